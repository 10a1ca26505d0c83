package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// proc identifies one process the environment started. A pid alone is not enough: after a crash the
// pid may belong to another program by the time anyone looks, so the kernel's start time of the
// process is kept with it and both must match.
type proc struct {
	// name is what the process is, for messages: etcd, kube-apiserver, ovsdb-server, ...
	name string
	// pid is the process id.
	pid int
	// start is the process's start time in clock ticks since boot (field 22 of /proc/PID/stat).
	start uint64
}

func (p proc) String() string { return fmt.Sprintf("%s (pid %d)", p.name, p.pid) }

// procStat is what is read from /proc/PID/stat.
type procStat struct {
	comm  string
	state byte
	ppid  int
	start uint64
}

// parseStat parses the content of /proc/PID/stat. The command name is between the first '(' and
// the last ')', and may itself contain spaces and parentheses.
func parseStat(data string) (procStat, error) {
	open, closing := strings.IndexByte(data, '('), strings.LastIndexByte(data, ')')
	if open < 0 || closing < open {
		return procStat{}, fmt.Errorf("malformed stat %q", data)
	}
	// Fields after the name, starting with field 3 (state); start time is field 22.
	fields := strings.Fields(data[closing+1:])
	if len(fields) < 20 || len(fields[0]) != 1 {
		return procStat{}, fmt.Errorf("malformed stat %q", data)
	}
	ppid, err := strconv.Atoi(fields[1])
	if err != nil {
		return procStat{}, fmt.Errorf("malformed ppid in stat %q: %w", data, err)
	}
	start, err := strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("malformed start time in stat %q: %w", data, err)
	}
	return procStat{comm: data[open+1 : closing], state: fields[0][0], ppid: ppid, start: start}, nil
}

func readStat(pid int) (procStat, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	return parseStat(string(data))
}

// self returns the record of a process by pid, reading its start time.
func self(name string, pid int) (proc, error) {
	st, err := readStat(pid)
	if err != nil {
		return proc{}, fmt.Errorf("reading the state of %s (pid %d): %w", name, pid, err)
	}
	return proc{name: name, pid: pid, start: st.start}, nil
}

// alive reports whether the process still runs. A zombie has exited: it only waits for its parent
// to collect its status.
func (p proc) alive() bool {
	st, err := readStat(p.pid)
	if err != nil {
		return false
	}
	return st.start == p.start && st.state != 'Z' && st.state != 'X'
}

// signal sends sig to the process if it is still the one recorded.
func (p proc) signal(sig syscall.Signal) error {
	if !p.alive() {
		return nil
	}
	if err := syscall.Kill(p.pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signalling %s: %w", p, err)
	}
	return nil
}

// children returns this process's children whose command name is one of names.
func children(names ...string) ([]proc, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	me := os.Getpid()
	var out []proc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readStat(pid)
		if err != nil || st.ppid != me || st.state == 'Z' {
			continue
		}
		for _, n := range names {
			if st.comm == n {
				out = append(out, proc{name: n, pid: pid, start: st.start})
			}
		}
	}
	return out, nil
}

// waitGone waits until none of procs runs, at most timeout, and returns those still running.
// Polling is the only way to wait for processes that are not this one's children.
func waitGone(procs []proc, timeout time.Duration) []proc {
	var left []proc
	_ = wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		left = left[:0]
		for _, p := range procs {
			if p.alive() {
				left = append(left, p)
			}
		}
		return len(left) == 0, nil
	})
	return left
}

// killAll sends SIGKILL to every process of procs that still runs and waits until they are gone.
// It returns an error naming those that survive.
func killAll(procs []proc) error {
	for _, p := range procs {
		_ = p.signal(syscall.SIGKILL)
	}
	if left := waitGone(procs, 10*time.Second); len(left) > 0 {
		return fmt.Errorf("still running after SIGKILL: %v", left)
	}
	return nil
}

// pidsFile is the file in the state directory that lists every process the environment started,
// one "NAME PID START" line each (START is the start time from /proc/PID/stat), so that
// `localenv down`, the next start and tests can make sure none is left.
const pidsFile = "pids"

func writePids(dir string, procs []proc) error {
	var b strings.Builder
	for _, p := range procs {
		fmt.Fprintf(&b, "%s %d %d\n", p.name, p.pid, p.start)
	}
	tmp := filepath.Join(dir, pidsFile+".tmp")
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, pidsFile))
}

// readPids reads the pids file; a missing file is an empty list.
func readPids(dir string) ([]proc, error) {
	f, err := os.Open(filepath.Join(dir, pidsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []proc
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var p proc
		if _, err := fmt.Sscanf(sc.Text(), "%s %d %d", &p.name, &p.pid, &p.start); err != nil {
			return nil, fmt.Errorf("%s: malformed line %q: %w", f.Name(), sc.Text(), err)
		}
		out = append(out, p)
	}
	return out, sc.Err()
}
