package testenv

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/util/wait"
)

func TestMain(m *testing.M) {
	// The launcher tests start this binary as the launcher of sleep.
	RunLauncher()
	os.Exit(m.Run())
}

func TestParseLaunch(t *testing.T) {
	tests := []struct {
		value   string
		want    launch
		wantErr bool
	}{
		{value: "4242:/repo/bin/control-plane", want: launch{parent: 4242, dir: "/repo/bin/control-plane"}},
		{value: "4242:/a:b", want: launch{parent: 4242, dir: "/a:b"}},
		{value: "4242", wantErr: true},
		{value: "4242:bin/control-plane", wantErr: true},
		{value: "x:/bin", wantErr: true},
		{value: "0:/bin", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.value, func(t *testing.T) {
			got, err := parseLaunch(tc.value)
			if (err != nil) != tc.wantErr {
				t.Fatalf("parseLaunch(%q) error = %v, want error %v", tc.value, err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(launch{})); diff != "" {
				t.Errorf("parseLaunch(%q) mismatch (-want +got):\n%s", tc.value, diff)
			}
			if err == nil {
				if back, _ := parseLaunch(got.String()); back != got {
					t.Errorf("parseLaunch(%q.String()) = %+v, want %+v", got, back, got)
				}
			}
		})
	}
	if got, want := (launch{parent: 1, dir: "/cp"}).binary("/state/launch/etcd"), "/cp/etcd"; got != want {
		t.Errorf("binary() = %q, want %q: the real binary of the link's name", got, want)
	}
}

// helperEnv makes the test binary run TestHelperProcess as a program: the value says how it starts
// its child.
const helperEnv = "TESTENV_HELPER"

// TestHelperProcess is not a test: run by the tests below with helperEnv set, it starts sleep as
// its child, prints the child's pid and waits to be killed.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		t.Skip("a helper process for other tests")
	}
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	var cmd *exec.Cmd
	switch mode {
	case "command":
		cmd = exec.Command(sleep, "1000")
		err = StartCommand(cmd)
	case "launcher":
		// As envtest starts etcd: a process group of its own, no parent-death signal.
		var links map[string]string
		links, err = launcherLinks(t.TempDir(), []string{"sleep"})
		if err == nil {
			cmd = exec.Command(links["sleep"], "1000")
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			err = withLaunchEnv(filepath.Dir(sleep), cmd.Start)
		}
	}
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println(cmd.Process.Pid)
	select {}
}

// TestChildDiesWithParent starts a helper process that starts sleep, kills the helper with
// SIGKILL, and waits for sleep to be gone: the kernel must kill it, as nothing else does.
func TestChildDiesWithParent(t *testing.T) {
	for _, mode := range []string{"command", "launcher"} {
		t.Run(mode, func(t *testing.T) {
			helper := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
			helper.Env = append(os.Environ(), helperEnv+"="+mode)
			stdout, err := helper.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			helper.Stderr = os.Stderr
			if err := helper.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				_ = helper.Process.Kill()
				_ = helper.Wait()
			})
			line, err := bufio.NewReader(stdout).ReadString('\n')
			if err != nil {
				t.Fatalf("reading the helper's output: %v", err)
			}
			pid, err := strconv.Atoi(line[:len(line)-1])
			if err != nil {
				t.Fatalf("the helper printed %q, not its child's pid", line)
			}
			child, err := Identify("sleep", pid)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = KillAll([]Proc{child}) })

			// Through the launcher too, the child becomes sleep itself, with the helper as its parent.
			fsys, err := procFS()
			if err != nil {
				t.Fatal(err)
			}
			sleep, err := exec.LookPath("sleep")
			if err == nil {
				sleep, err = filepath.EvalSymlinks(sleep)
			}
			if err != nil {
				t.Fatal(err)
			}
			var exe string
			err = wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 5*time.Second, true, func(context.Context) (bool, error) {
				p, err := fsys.Proc(pid)
				if err != nil {
					return false, err
				}
				exe, _ = p.Executable()
				return exe == sleep, nil
			})
			if err != nil {
				t.Fatalf("the child runs %q, not %s: %v", exe, sleep, err)
			}
			st, err := stat(fsys, pid)
			if err != nil {
				t.Fatal(err)
			}
			if st.PPID != helper.Process.Pid || st.PGRP != pid {
				t.Errorf("the child has parent %d and process group %d; want parent %d and a process group of its own",
					st.PPID, st.PGRP, helper.Process.Pid)
			}

			if err := helper.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			if left := WaitGone([]Proc{child}, 5*time.Second); len(left) > 0 {
				t.Errorf("%v still runs 5 s after its parent was killed", left)
			}
		})
	}
}
