package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Every child process this package starts dies with the process that started it, however that one
// ends, SIGKILL included: the kernel sends it SIGKILL when its parent dies (PR_SET_PDEATHSIG).
//
// Two things stand in the way. The kernel's "parent" is the thread that forked the child, not the
// process: Go runs goroutines on threads it may retire, and a child forked from a retired thread
// would be killed while its parent still runs. So every child is forked from one goroutine locked
// to its thread for the life of the process (forker below). And envtest starts etcd and
// kube-apiserver itself, with no way to add the signal; so, when asked, they are started through a
// link to this program named like them, which sets the signal on itself and then executes the
// real binary in place (RunLauncher), keeping its pid, its process group and the signal.

// forker forks every child on one thread that never exits.
var forker struct {
	once sync.Once
	work chan func()
}

// onForkerThread runs f on the forker's thread and returns when it has returned.
func onForkerThread(f func()) {
	forker.once.Do(func() {
		forker.work = make(chan func())
		go func() {
			// Never unlocked, and the goroutine never returns: the thread lives as long as the process.
			runtime.LockOSThread()
			for f := range forker.work {
				f()
			}
		}()
	})
	done := make(chan struct{})
	forker.work <- func() {
		defer close(done)
		f()
	}
	<-done
}

// StartCommand starts cmd in a process group of its own, so that a Ctrl-C at the terminal reaches
// only this program, which stops its children in order, and with SIGKILL as its parent-death
// signal, so that it never outlives this program.
func StartCommand(cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	var err error
	onForkerThread(func() { err = cmd.Start() })
	return err
}

// launchEnv is set, while envtest starts etcd and kube-apiserver through the launcher links, to
// "PID:DIR": the pid of the process that starts them and the directory of the real binaries.
const launchEnv = "SAMPLECRD_TESTENV_LAUNCH"

// launch is what launchEnv holds.
type launch struct {
	// parent is the pid of the process that starts the binaries.
	parent int
	// dir holds the real binaries.
	dir string
}

func (l launch) String() string { return strconv.Itoa(l.parent) + ":" + l.dir }

func parseLaunch(s string) (launch, error) {
	pid, dir, ok := strings.Cut(s, ":")
	parent, err := strconv.Atoi(pid)
	if !ok || err != nil || parent <= 0 || !filepath.IsAbs(dir) {
		return launch{}, fmt.Errorf("malformed %s=%q: want PID:DIR, with an absolute DIR", launchEnv, s)
	}
	return launch{parent: parent, dir: dir}, nil
}

// binary is the real binary for a launcher link invoked as argv0.
func (l launch) binary(argv0 string) string {
	return filepath.Join(l.dir, filepath.Base(argv0))
}

// RunLauncher must be the first thing main does in a program that starts a control plane with
// ControlPlaneOptions.LauncherDir. When the program runs as the launcher of etcd or
// kube-apiserver, RunLauncher sets SIGKILL as its parent-death signal and executes the real binary,
// never returning; otherwise it returns at once.
func RunLauncher() {
	value, ok := os.LookupEnv(launchEnv)
	if !ok {
		return
	}
	l, err := parseLaunch(value)
	if err != nil {
		launcherFailed(err)
	}
	// The signal is the calling thread's, and execve keeps the thread that calls it.
	runtime.LockOSThread()
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0, 0, 0); err != nil {
		launcherFailed(fmt.Errorf("setting the parent-death signal: %w", err))
	}
	// The parent may have died before the signal was set: then it never comes.
	if os.Getppid() != l.parent {
		launcherFailed(fmt.Errorf("the process that started it (pid %d) is gone", l.parent))
	}
	if err := os.Unsetenv(launchEnv); err != nil {
		launcherFailed(err)
	}
	bin := l.binary(os.Args[0])
	err = syscall.Exec(bin, append([]string{bin}, os.Args[1:]...), os.Environ())
	launcherFailed(fmt.Errorf("executing %s: %w", bin, err))
}

func launcherFailed(err error) {
	fmt.Fprintf(os.Stderr, "launcher of %s: %v\n", filepath.Base(os.Args[0]), err)
	os.Exit(127)
}

// launcherLinks makes, in dir, a link to this program named after each of names, for envtest to
// start instead of the binaries of ControlPlaneDir.
func launcherLinks(dir string, names []string) (map[string]string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	links := map[string]string{}
	for _, name := range names {
		link := filepath.Join(dir, name)
		if err := os.Remove(link); err != nil && !os.IsNotExist(err) {
			return nil, err
		}
		if err := os.Symlink(self, link); err != nil {
			return nil, err
		}
		links[name] = link
	}
	return links, nil
}

// envMu serialises the starts that set launchEnv in this process's environment, which envtest's
// children inherit: envtest offers no other way to pass them anything.
var envMu sync.Mutex

// withLaunchEnv runs f, on the forker's thread, with launchEnv set for binaries in dir.
func withLaunchEnv(dir string, f func() error) error {
	envMu.Lock()
	defer envMu.Unlock()
	if err := os.Setenv(launchEnv, launch{parent: os.Getpid(), dir: dir}.String()); err != nil {
		return err
	}
	defer os.Unsetenv(launchEnv)
	var err error
	onForkerThread(func() { err = f() })
	return err
}
