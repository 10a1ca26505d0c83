package sbin

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFind(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "some-daemon")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "not-executable"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	saved := dirs
	dirs = []string{dir}
	defer func() { dirs = saved }()
	t.Setenv("PATH", t.TempDir())

	if got, err := Find("some-daemon"); err != nil || got != exe {
		t.Errorf("Find(some-daemon) = %q, %v; want %q", got, err, exe)
	}
	for _, name := range []string{"not-executable", "missing"} {
		if _, err := Find(name); err == nil || !strings.Contains(err.Error(), "run hack/ensure-ovn.sh") {
			t.Errorf("Find(%s) error = %v, want one naming the fix", name, err)
		}
	}
}
