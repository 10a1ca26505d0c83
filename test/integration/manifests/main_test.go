// Package manifests tests what a user applies: the manifests `make manifests` renders, applied
// with server-side dry-run to a real API server in a namespace that enforces the restricted Pod
// Security level, the Deployment's production invariants, and the Prometheus Operator objects and
// Grafana dashboard, checked against the metrics a running manager exposes.
package manifests

import (
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
	os.Exit(framework.RunWithManager(m, env, true, &managerBin))
}
