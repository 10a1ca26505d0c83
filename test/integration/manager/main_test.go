// Package manager tests the samplecrd-controller binary as a user runs it: a process against a real
// kube-apiserver and etcd (and, where the network controller runs, a real ovsdb-server).
package manager

import (
	"os"
	"testing"

	"github.com/samplecrd/samplecrd-controller/test/integration/framework"
)

var (
	env = framework.NewEnvironment()
	// managerBin is the binary under test, built once by TestMain.
	managerBin string
)

func TestMain(m *testing.M) {
	os.Exit(framework.RunWithManager(m, env, true, &managerBin))
}
