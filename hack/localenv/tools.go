package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// progressInterval is how often a long step says it is still working.
const progressInterval = 30 * time.Second

// ensureTools builds the control plane when it is missing or stale and makes sure ovsdb-server is
// installed, through the same scripts as 'make tools'.
func ensureTools(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join("bin", "control-plane", "VERSION")); err != nil {
		step("Building kube-apiserver, etcd and kubectl into bin/control-plane (first time only: this takes a few minutes)")
	}
	if err := runStep(ctx, "hack/build-control-plane.sh"); err != nil {
		return fmt.Errorf("building the control plane: %w", err)
	}
	if err := runStep(ctx, "hack/ensure-ovn.sh"); err != nil {
		return fmt.Errorf("OVN is needed: %w", err)
	}
	return nil
}

// runStep runs a command with its output on the terminal and, when it takes long, prints how long
// it has been running so far, so that a long build does not look stuck.
func runStep(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = term.Out, term.Err
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	ticker := time.NewTicker(progressInterval)
	defer ticker.Stop()
	for {
		select {
		case err := <-done:
			return err
		case <-ticker.C:
			fmt.Fprintf(term.Out, "    ... still working (%s)\n", time.Since(start).Round(time.Second))
		}
	}
}

// buildManager builds the manager into bin/.
func buildManager(ctx context.Context) (string, error) {
	bin := filepath.Join("bin", "samplecrd-controller")
	step("Building the manager into " + bin)
	if err := runStep(ctx, "go", "build", "-o", bin, "./cmd/samplecrd-controller"); err != nil {
		return "", fmt.Errorf("building the manager: %w", err)
	}
	return bin, nil
}
