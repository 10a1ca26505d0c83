package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/samplecrd/samplecrd-controller/internal/testenv"
)

// daemonLog is the log of the background process that up starts.
const daemonLog = "localenv.log"

// upTimeout bounds how long up waits for the environment; starting kube-apiserver takes most of it.
const upTimeout = controlPlaneStartTimeout + time.Minute

// downTimeout bounds how long down waits for the environment to stop before it kills what is left.
const downTimeout = 2 * time.Minute

// cmdUp is 'make local-up': it starts 'localenv serve' as a daemon in a session of its own, hands it
// the state directory's lock, and returns once the environment is ready.
func cmdUp(dir string) int {
	lockf, ok := lockOrSay(dir, "up")
	if !ok {
		return 1
	}
	defer lockf.Close()

	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer cancel()
	if err := ensureTools(ctx); err != nil {
		fmt.Fprintf(term.Err, "localenv up: %v\n", err)
		return 1
	}
	// A ready file from an earlier run must not be mistaken for this one's.
	if err := os.Remove(filepath.Join(dir, readyFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(term.Err, "localenv up: %v\n", err)
		return 1
	}

	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(term.Err, "localenv up: %v\n", err)
		return 1
	}
	logPath := filepath.Join(dir, daemonLog)
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		fmt.Fprintf(term.Err, "localenv up: %v\n", err)
		return 1
	}
	defer logFile.Close()
	step("Starting the environment in the background (log: " + logPath + ")")
	// The lock is file descriptor 3 in the daemon: the same open file, so the lock passes to it
	// with no moment where another start could take it.
	cmd := exec.Command(exe, "serve", "--dir", dir, "--lock-fd", "3")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.ExtraFiles = []*os.File{lockf}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(term.Err, "localenv up: starting the daemon: %v\n", err)
		return 1
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()

	var ready Ready
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, upTimeout, true, func(context.Context) (bool, error) {
		select {
		case <-exited:
			return false, fmt.Errorf("the environment failed to start (%s)", cmd.ProcessState)
		default:
		}
		data, err := os.ReadFile(filepath.Join(dir, readyFile))
		if err != nil {
			return false, nil
		}
		return true, json.Unmarshal(data, &ready)
	})
	if err != nil {
		if ctx.Err() == nil {
			fmt.Fprintf(term.Err, "localenv up: %v; the end of %s:\n%s\n", err, logPath, tail(logPath, 20))
		}
		// Stop the daemon, whatever state it is in, so that nothing is left.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(downTimeout):
			_ = cmd.Process.Kill()
		}
		return 1
	}
	_ = cmd.Process.Release()

	env := &Env{dir: dir}
	fmt.Fprintf(term.Out, `==> The environment is up (pid %d).

    kubeconfig:      %s
    OVN northbound:  %s
    API server:      %s
    logs:            %s/

    Run the manager against it:
      go run ./cmd/samplecrd-controller --kubeconfig %s --ovn-nb %s
    Look at it:
%s
    Stop it with 'make local-down%s'.
`, ready.PID, env.Kubeconfig(), env.OVNNorthbound(), ready.APIServer, dir,
		env.Kubeconfig(), env.OVNNorthbound(), tryCommands(env), dirArg(dir))
	return 0
}

// cmdServe is the daemon that up starts: it runs the environment until SIGTERM or SIGINT.
func cmdServe(dir string, lockFd int) int {
	var lockf *os.File
	if lockFd > 0 {
		// Inherited descriptors are not closed on exec: without this, etcd and the others would
		// inherit the lock and hold it after this process dies.
		syscall.CloseOnExec(lockFd)
		lockf = os.NewFile(uintptr(lockFd), filepath.Join(dir, lockFile))
	} else {
		f, owner, err := lock(dir)
		if errors.Is(err, errLocked) {
			err = alreadyRunning(dir, owner)
		}
		if err != nil {
			fmt.Fprintf(term.Err, "localenv serve: %v\n", err)
			return 1
		}
		lockf = f
	}
	defer lockf.Close()
	if err := writeOwner(lockf, os.Getpid()); err != nil {
		fmt.Fprintf(term.Err, "localenv serve: %v\n", err)
		return 1
	}
	// No terminal to hang up in its own session, but a hang-up must not kill it half-way.
	signal.Ignore(syscall.SIGHUP)
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()

	env, err := newEnv(dir)
	if err != nil {
		fmt.Fprintf(term.Err, "localenv serve: %v\n", err)
		return 1
	}
	if err := env.Start(ctx); err != nil {
		fmt.Fprintf(term.Err, "localenv serve: %v\n", err)
		stopEnv(env, dir)
		return 1
	}
	if err := env.WriteReady(); err != nil {
		fmt.Fprintf(term.Err, "localenv serve: %v\n", err)
		stopEnv(env, dir)
		return 1
	}
	step(fmt.Sprintf("The environment is up: kubeconfig %s, OVN northbound %s", env.Kubeconfig(), env.OVNNorthbound()))
	code := 0
	select {
	case <-ctx.Done():
		step("Stopping on request")
	case msg := <-env.Failed(ctx):
		step(msg + "; stopping everything")
		code = 1
	}
	return max(code, stopEnv(env, dir))
}

// cmdDown is 'make local-down': it stops the owner of the state directory (the daemon of up, or a
// 'make run') and waits until it and every process it recorded are gone.
func cmdDown(dir string) error {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(term.Out, "Nothing runs in %s.\n", dir)
		return nil
	}
	lockf, owner, err := lock(dir)
	if err == nil {
		// Nobody owns the directory; clean up after an owner that was killed, if any.
		defer lockf.Close()
		env := &Env{dir: dir}
		if err := env.cleanStale(); err != nil {
			return err
		}
		fmt.Fprintf(term.Out, "Nothing runs in %s.\n", dir)
		return nil
	}
	if !errors.Is(err, errLocked) {
		return err
	}
	recorded, err := readPids(dir)
	if err != nil {
		return err
	}
	p, err := testenv.Identify("localenv", owner)
	if err != nil {
		// The owner is gone but the lock is held: by one of its processes, if anything. Kill them.
		step(fmt.Sprintf("The owner of %s (pid %d) is gone; stopping what it left", dir, owner))
		if err := testenv.KillAll(recorded); err != nil {
			return err
		}
	} else {
		step(fmt.Sprintf("Stopping the environment in %s (pid %d)", dir, owner))
		if err := p.Signal(syscall.SIGTERM); err != nil {
			return err
		}
		recorded = append(recorded, p)
	}
	// The owner releases the lock when it exits, after it has stopped everything.
	ctx, cancel := context.WithTimeout(context.Background(), downTimeout)
	defer cancel()
	var unlocked *os.File
	err = wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(context.Context) (bool, error) {
		f, _, err := lock(dir)
		if errors.Is(err, errLocked) {
			return false, nil
		}
		unlocked = f
		return true, err
	})
	if unlocked != nil {
		defer unlocked.Close()
	}
	if err != nil {
		fmt.Fprintf(term.Err, "localenv down: pid %d did not stop within %s; killing what is left\n", owner, downTimeout)
	}
	if err := testenv.KillAll(recorded); err != nil {
		return err
	}
	// Nothing is left after a clean stop; after a crash, the data and the kubeconfig are.
	if err := (&Env{dir: dir}).removeState(); err != nil {
		return err
	}
	step(fmt.Sprintf("Stopped: nothing is left running. The logs are in %s/.", dir))
	return nil
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "    " + strings.Join(lines, "\n    ")
}
