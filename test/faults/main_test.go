// Package faults is the fault-injection suite: it runs the manager binary against a real
// kube-apiserver, etcd and OVN northbound ovsdb-server, all processes, drives a burst of Networks,
// breaks one of them mid-burst (a crash, a restart on an empty database, an outage, a tampered
// row, ...), lifts the fault, and checks that the system converges to the invariants of
// checkInvariants, timing how long that takes. TestFaults runs every scenario and reports a table
// (-faults.report writes it as markdown: docs/reliability.md).
//
//	go test ./test/faults/                                   # the short form, 100 Networks
//	go test -timeout 40m ./test/faults/ -args -faults.networks=1000 -faults.race=false \
//	    -faults.report=$PWD/docs/reliability.md              # make faults
package faults

import (
	"flag"
	"os"
	"testing"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/samplecrd/samplecrd-controller/internal/testenv"
	"github.com/samplecrd/samplecrd-controller/test/integration/framework"
)

var (
	networksFlag = flag.Int("faults.networks", 100, "Networks of each scenario's burst")
	reportFlag   = flag.String("faults.report", "", "write the results as markdown to this file")
	raceFlag     = flag.Bool("faults.race", true, "build the manager with the race detector")
)

var (
	// env's etcd and kube-apiserver can be killed and restarted in place.
	env = framework.NewRestartableEnvironment()
	// managerBin is the binary under test, built once by TestMain.
	managerBin string
)

func TestMain(m *testing.M) {
	// This binary is also the launcher of etcd and kube-apiserver (see testenv.RunLauncher).
	testenv.RunLauncher()
	flag.Parse()
	// envtest's own log says nothing the suite needs.
	ctrllog.SetLogger(logr.Discard())
	os.Exit(framework.RunWithManager(m, env, *raceFlag, &managerBin))
}
