// Package manager tests the samplecrd-controller binary as a user runs it: a process against a real
// kube-apiserver and etcd (and, where the network controller runs, a real ovsdb-server).
package manager

import (
	"fmt"
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
	dir, err := os.MkdirTemp("", "samplecrd-manager-")
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
