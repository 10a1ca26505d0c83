package testenv

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/procfs"
	"k8s.io/apimachinery/pkg/util/wait"
)

// Proc identifies one process. A pid alone is not enough: once a process has exited its pid may
// belong to another program by the time anyone looks, so the kernel's start time of the process is
// kept with it and both must match.
type Proc struct {
	// Name is what the process is, for messages: etcd, kube-apiserver, ovsdb-server, ...
	Name string
	// PID is the process id.
	PID int
	// Start is the process's start time in clock ticks since boot (field 22 of /proc/PID/stat).
	Start uint64
}

func (p Proc) String() string { return fmt.Sprintf("%s (pid %d)", p.Name, p.PID) }

// procFS is the mounted /proc.
func procFS() (procfs.FS, error) {
	return procfs.NewDefaultFS()
}

// stat reads /proc/PID/stat.
func stat(fsys procfs.FS, pid int) (procfs.ProcStat, error) {
	p, err := fsys.Proc(pid)
	if err != nil {
		return procfs.ProcStat{}, err
	}
	return p.Stat()
}

// Identify returns the identity of the running process pid, under the name given.
func Identify(name string, pid int) (Proc, error) {
	fsys, err := procFS()
	if err != nil {
		return Proc{}, err
	}
	st, err := stat(fsys, pid)
	if err != nil {
		return Proc{}, fmt.Errorf("reading the state of %s (pid %d): %w", name, pid, err)
	}
	return Proc{Name: name, PID: pid, Start: st.Starttime}, nil
}

// exited reports whether a process in state s has exited: a zombie only waits for its parent to
// collect its status.
func exited(s procfs.ProcStat) bool {
	return s.State == "Z" || s.State == "X"
}

// Alive reports whether the process still runs: its pid exists, with the same start time, and has
// not exited.
func (p Proc) Alive() bool {
	fsys, err := procFS()
	if err != nil {
		return false
	}
	return p.aliveIn(fsys)
}

func (p Proc) aliveIn(fsys procfs.FS) bool {
	st, err := stat(fsys, p.PID)
	return err == nil && st.Starttime == p.Start && !exited(st)
}

// Signal sends sig to the process if it is still the one identified.
func (p Proc) Signal(sig syscall.Signal) error {
	if !p.Alive() {
		return nil
	}
	if err := syscall.Kill(p.PID, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signalling %s: %w", p, err)
	}
	return nil
}

// CPUTime is the user and system CPU time the process has used so far, 0 when it is gone.
func (p Proc) CPUTime() time.Duration {
	fsys, err := procFS()
	if err != nil {
		return 0
	}
	st, err := stat(fsys, p.PID)
	if err != nil || st.Starttime != p.Start {
		return 0
	}
	return time.Duration(st.CPUTime() * float64(time.Second))
}

// Memory is the resident set size of a process, from /proc/PID/status.
type Memory struct {
	// RSS is the resident set size now (VmRSS), in bytes.
	RSS uint64
	// Peak is the largest resident set size so far (VmHWM), in bytes.
	Peak uint64
}

// Memory reads the process's resident set size.
func (p Proc) Memory() (Memory, error) {
	fsys, err := procFS()
	if err != nil {
		return Memory{}, err
	}
	proc, err := fsys.Proc(p.PID)
	if err != nil {
		return Memory{}, err
	}
	st, err := proc.NewStatus()
	if err != nil {
		return Memory{}, err
	}
	return Memory{RSS: st.VmRSS, Peak: st.VmHWM}, nil
}

// MachineBusy is the time all the machine's cores together spent on anything but idling or waiting
// for I/O since boot. Guest time is not added: the kernel counts it in user time already.
func MachineBusy() (time.Duration, error) {
	fsys, err := procFS()
	if err != nil {
		return 0, err
	}
	st, err := fsys.Stat()
	if err != nil {
		return 0, err
	}
	return busy(st.CPUTotal), nil
}

func busy(c procfs.CPUStat) time.Duration {
	return time.Duration((c.User + c.Nice + c.System + c.IRQ + c.SoftIRQ + c.Steal) * float64(time.Second))
}

// Children returns this process's running children whose command name is one of names, named
// after it, in the order of their pids.
func Children(names ...string) ([]Proc, error) {
	fsys, err := procFS()
	if err != nil {
		return nil, err
	}
	return children(fsys, os.Getpid(), names)
}

func children(fsys procfs.FS, parent int, names []string) ([]Proc, error) {
	all, err := fsys.AllProcs()
	if err != nil {
		return nil, err
	}
	var out []Proc
	for _, p := range all {
		st, err := p.Stat()
		// A process that exits while the list is read is no child any more.
		if err != nil || st.PPID != parent || exited(st) || !slices.Contains(names, st.Comm) {
			continue
		}
		out = append(out, Proc{Name: st.Comm, PID: p.PID, Start: st.Starttime})
	}
	slices.SortFunc(out, func(a, b Proc) int { return a.PID - b.PID })
	return out, nil
}

// Running returns those of procs that still run.
func Running(procs []Proc) []Proc {
	var out []Proc
	for _, p := range procs {
		if p.Alive() {
			out = append(out, p)
		}
	}
	return out
}

// WaitGone waits until none of procs runs, at most timeout, and returns those still running.
// Polling is the only way to wait for processes that are not this one's children.
func WaitGone(procs []Proc, timeout time.Duration) []Proc {
	var left []Proc
	_ = wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		left = Running(procs)
		return len(left) == 0, nil
	})
	return left
}

// killTimeout is how long KillAll waits for the processes it killed to be gone.
const killTimeout = 10 * time.Second

// KillAll sends SIGKILL to every process of procs that still runs and waits until they are gone.
// It returns an error naming those that survive.
func KillAll(procs []Proc) error {
	for _, p := range procs {
		_ = p.Signal(syscall.SIGKILL)
	}
	if left := WaitGone(procs, killTimeout); len(left) > 0 {
		return fmt.Errorf("still running after SIGKILL: %v", left)
	}
	return nil
}

// WriteProcs writes procs to the file path, one "NAME PID START" line each, replacing it at once so
// that a reader never sees half a list.
func WriteProcs(path string, procs []Proc) error {
	var b strings.Builder
	for _, p := range procs {
		fmt.Fprintf(&b, "%s %d %d\n", p.Name, p.PID, p.Start)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// ReadProcs reads a file that WriteProcs wrote; a missing file is an empty list.
func ReadProcs(path string) ([]Proc, error) {
	f, err := os.Open(filepath.Clean(path))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Proc
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		p, err := parseProcLine(sc.Text())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, p)
	}
	return out, sc.Err()
}

// parseProcLine parses one "NAME PID START" line of WriteProcs.
func parseProcLine(line string) (Proc, error) {
	f := strings.Fields(line)
	if len(f) != 3 {
		return Proc{}, fmt.Errorf("malformed line %q: want NAME PID START", line)
	}
	pid, err := strconv.Atoi(f[1])
	if err != nil {
		return Proc{}, fmt.Errorf("malformed pid in %q: %w", line, err)
	}
	start, err := strconv.ParseUint(f[2], 10, 64)
	if err != nil {
		return Proc{}, fmt.Errorf("malformed start time in %q: %w", line, err)
	}
	return Proc{Name: f[0], PID: pid, Start: start}, nil
}
