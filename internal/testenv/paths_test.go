package testenv

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestControlPlaneDir(t *testing.T) {
	t.Setenv(assetsEnv, "")
	if got, want := ControlPlaneDir("/repo"), "/repo/bin/control-plane"; got != want {
		t.Errorf("ControlPlaneDir() = %q, want %q", got, want)
	}
	t.Setenv(assetsEnv, "/assets")
	if got, want := ControlPlaneDir("/repo"), "/assets"; got != want {
		t.Errorf("ControlPlaneDir() with %s set = %q, want %q", assetsEnv, got, want)
	}
}

func TestCheckControlPlane(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(assetsEnv, dir)
	write := func(name string, mode os.FileMode) {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := CheckControlPlane("/repo"); !errors.Is(err, ErrMissingPrerequisite) {
		t.Errorf("CheckControlPlane() with no binaries = %v; want a missing prerequisite", err)
	}
	write("etcd", 0o755)
	write("kube-apiserver", 0o644)
	if err := CheckControlPlane("/repo"); !errors.Is(err, ErrMissingPrerequisite) {
		t.Errorf("CheckControlPlane() with a kube-apiserver that is not executable = %v; want a missing prerequisite", err)
	}
	write("kube-apiserver", 0o755)
	if err := CheckControlPlane("/repo"); err != nil {
		t.Errorf("CheckControlPlane() with both binaries = %v", err)
	}
	if err := CheckControlPlane("/repo", "kubectl"); !errors.Is(err, ErrMissingPrerequisite) {
		t.Errorf("CheckControlPlane(kubectl) with no kubectl = %v; want a missing prerequisite", err)
	}
}

func TestInCI(t *testing.T) {
	for value, want := range map[string]bool{"": false, "true": true, "1": true, "false": false, "yes": false} {
		t.Setenv("CI", value)
		if got := InCI(); got != want {
			t.Errorf("InCI() with CI=%q = %v, want %v", value, got, want)
		}
	}
}
