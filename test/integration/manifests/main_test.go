// Package manifests tests what a user applies: the manifests `make manifests` renders, applied
// with server-side dry-run to a real API server in a namespace that enforces the restricted Pod
// Security level, the Deployment's production invariants, and the Prometheus Operator objects and
// Grafana dashboard, checked against the metrics a running manager exposes.
package manifests

import (
	"fmt"
	"os"
	"testing"

	"github.com/samplecrd/samplecrd-controller/test/integration/framework"
)

var (
	env = framework.NewEnvironment()
	// managerBin is the binary whose metrics the dashboard and the alerts must name, built once.
	managerBin string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "samplecrd-manifests-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	managerBin, err = framework.BuildManager(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := env.Run(m)
	os.RemoveAll(dir)
	os.Exit(code)
}
