package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/procfs"
)

// fakeProc is one process of a fake /proc.
type fakeProc struct {
	pid, ppid    int
	comm, state  string
	start        uint64
	utime, stime uint64
}

// statLine is the /proc/PID/stat of p: the fields the kernel writes, zero but those p sets.
func (p fakeProc) statLine() string {
	fields := make([]string, 50)
	for i := range fields {
		fields[i] = "0"
	}
	// Field 3 (state) is index 0 here, field 4 (ppid) index 1, and so on.
	fields[0] = p.state
	fields[1] = fmt.Sprint(p.ppid)
	fields[11] = fmt.Sprint(p.utime)
	fields[12] = fmt.Sprint(p.stime)
	fields[19] = fmt.Sprint(p.start)
	return fmt.Sprintf("%d (%s) %s\n", p.pid, p.comm, strings.Join(fields, " "))
}

// fakeProcFS writes a /proc holding procs and returns it.
func fakeProcFS(t *testing.T, procs ...fakeProc) procfs.FS {
	t.Helper()
	dir := t.TempDir()
	for _, p := range procs {
		pdir := filepath.Join(dir, fmt.Sprint(p.pid))
		if err := os.MkdirAll(pdir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(pdir, "stat"), []byte(p.statLine()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Entries that are not processes are skipped.
	if err := os.WriteFile(filepath.Join(dir, "uptime"), []byte("1.0 1.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fsys, err := procfs.NewFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	return fsys
}

func TestChildren(t *testing.T) {
	fsys := fakeProcFS(t,
		fakeProc{pid: 100, ppid: 1, comm: "localenv", state: "S", start: 10},
		fakeProc{pid: 101, ppid: 100, comm: "etcd", state: "S", start: 11},
		fakeProc{pid: 102, ppid: 100, comm: "kube-apiserver", state: "R", start: 12},
		// A zombie has exited.
		fakeProc{pid: 103, ppid: 100, comm: "etcd", state: "Z", start: 13},
		// Another program's etcd.
		fakeProc{pid: 104, ppid: 200, comm: "etcd", state: "S", start: 14},
		// A child under another name.
		fakeProc{pid: 105, ppid: 100, comm: "ovsdb-server", state: "S", start: 15},
		// A name with spaces and parentheses.
		fakeProc{pid: 106, ppid: 100, comm: "a (b) c", state: "S", start: 16},
	)
	tests := []struct {
		name  string
		names []string
		want  []Proc
	}{
		{
			name:  "control plane",
			names: []string{"etcd", "kube-apiserver"},
			want:  []Proc{{Name: "etcd", PID: 101, Start: 11}, {Name: "kube-apiserver", PID: 102, Start: 12}},
		},
		{name: "odd name", names: []string{"a (b) c"}, want: []Proc{{Name: "a (b) c", PID: 106, Start: 16}}},
		{name: "none", names: []string{"kubectl"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := children(fsys, 100, tc.names)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("children() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAliveIn(t *testing.T) {
	fsys := fakeProcFS(t,
		fakeProc{pid: 101, ppid: 1, comm: "etcd", state: "S", start: 11},
		fakeProc{pid: 102, ppid: 1, comm: "kube-apiserver", state: "Z", start: 12},
	)
	tests := []struct {
		name string
		proc Proc
		want bool
	}{
		{name: "running", proc: Proc{Name: "etcd", PID: 101, Start: 11}, want: true},
		{name: "pid reused by another process", proc: Proc{Name: "etcd", PID: 101, Start: 5}},
		{name: "zombie", proc: Proc{Name: "kube-apiserver", PID: 102, Start: 12}},
		{name: "gone", proc: Proc{Name: "etcd", PID: 103, Start: 13}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.proc.aliveIn(fsys); got != tc.want {
				t.Errorf("%v: aliveIn() = %v, want %v", tc.proc, got, tc.want)
			}
		})
	}
}

func TestIdentifySelf(t *testing.T) {
	me, err := Identify("test", os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if !me.Alive() {
		t.Errorf("%v: Alive() = false for the running test", me)
	}
	if me.CPUTime() <= 0 {
		t.Errorf("%v: CPUTime() = %v; the running test has used some", me, me.CPUTime())
	}
	mem, err := me.Memory()
	if err != nil {
		t.Fatal(err)
	}
	if mem.RSS == 0 || mem.Peak < mem.RSS {
		t.Errorf("Memory() = %+v; want a resident set size, and a peak at least as large", mem)
	}
	reused := me
	reused.Start++
	if reused.Alive() {
		t.Errorf("Alive() = true for pid %d with another start time: a reused pid must not count", me.PID)
	}
	if got := reused.CPUTime(); got != 0 {
		t.Errorf("CPUTime() = %v for pid %d with another start time; want 0", got, me.PID)
	}
}

func TestBusy(t *testing.T) {
	got := busy(procfs.CPUStat{User: 10, Nice: 1, System: 5, Idle: 100, Iowait: 7, IRQ: 0.5, SoftIRQ: 0.25, Steal: 0.25, Guest: 3, GuestNice: 1})
	if want := 17 * time.Second; got != want {
		t.Errorf("busy() = %v, want %v: user, nice, system, irq, softirq and steal", got, want)
	}
}

func TestParseProcLine(t *testing.T) {
	tests := []struct {
		line    string
		want    Proc
		wantErr bool
	}{
		{line: "etcd 4242 987654", want: Proc{Name: "etcd", PID: 4242, Start: 987654}},
		{line: "etcd 4242", wantErr: true},
		{line: "etcd 4242 987654 extra", wantErr: true},
		{line: "etcd x 987654", wantErr: true},
		{line: "etcd 4242 -1", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.line, func(t *testing.T) {
			got, err := parseProcLine(tc.line)
			if (err != nil) != tc.wantErr {
				t.Fatalf("parseProcLine(%q) error = %v, want error %v", tc.line, err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("parseProcLine(%q) mismatch (-want +got):\n%s", tc.line, diff)
			}
		})
	}
}

func TestProcsRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pids")
	got, err := ReadProcs(path)
	if err != nil || len(got) != 0 {
		t.Fatalf("ReadProcs() of a missing file = %v, %v; want nothing", got, err)
	}
	want := []Proc{{Name: "localenv", PID: 10, Start: 100}, {Name: "kube-apiserver", PID: 12, Start: 130}}
	if err := WriteProcs(path, want); err != nil {
		t.Fatal(err)
	}
	got, err = ReadProcs(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ReadProcs() mismatch (-want +got):\n%s", diff)
	}
	if err := os.WriteFile(path, []byte("etcd 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadProcs(path); err == nil {
		t.Error("ReadProcs() of a malformed file succeeded")
	}
}
