package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// lockFile is the file in the state directory whose lock the owner of an environment holds for as
// long as it runs, and which holds its pid. The kernel releases the lock when the owner exits,
// however it exits, so a stale file never blocks a new start.
const lockFile = "localenv.lock"

// errLocked is returned by lock when another process owns the state directory.
var errLocked = errors.New("an environment is already running")

// lock takes the state directory's lock without waiting. On errLocked it returns the pid that the
// owner wrote, or 0 if it has not written it yet.
func lock(dir string) (*os.File, int, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, 0, err
	}
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, 0, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ownerPid(dir), errLocked
		}
		return nil, 0, fmt.Errorf("locking %s: %w", f.Name(), err)
	}
	return f, 0, nil
}

// ownerPid returns the pid written in the lock file, or 0.
func ownerPid(dir string) int {
	data, err := os.ReadFile(filepath.Join(dir, lockFile))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	return pid
}

// writeOwner records pid as the lock's owner.
func writeOwner(f *os.File, pid int) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.WriteAt([]byte(strconv.Itoa(pid)+"\n"), 0)
	return err
}

// alreadyRunning is the message for errLocked.
func alreadyRunning(dir string, pid int) error {
	who := "another process"
	if pid > 0 {
		who = fmt.Sprintf("process %d", pid)
	}
	return fmt.Errorf("an environment is already running in %s (%s): use it, or stop it first (Ctrl-C where 'make run' runs, or 'make local-down%s')",
		dir, who, dirArg(dir))
}

// lockOrSay takes the state directory's lock for the command cmd, or says on standard error why it
// cannot (another environment runs there, naming its process) and reports false.
func lockOrSay(dir, cmd string) (*os.File, bool) {
	lockf, owner, err := lock(dir)
	if errors.Is(err, errLocked) {
		fmt.Fprintf(term.Err, "localenv %s: %v\n", cmd, alreadyRunning(dir, owner))
		return nil, false
	}
	if err != nil {
		fmt.Fprintf(term.Err, "localenv %s: %v\n", cmd, err)
		return nil, false
	}
	return lockf, true
}
