// Package framework starts what the integration tests run against, through internal/testenv: a
// real kube-apiserver and etcd (through envtest, from the binaries hack/build-control-plane.sh
// builds into bin/control-plane) with the project's CRDs and admission policies installed, and
// OVN northbound ovsdb-servers. It is testenv for testing.TB: failures fail the test.
//
// Each test package starts one control plane in TestMain:
//
//	var env = framework.NewEnvironment()
//
//	func TestMain(m *testing.M) { os.Exit(env.Run(m)) }
//
//	func TestSomething(t *testing.T) {
//		cfg := env.Config(t)
//		...
//	}
//
// When a prerequisite is missing, the tests of the package skip with the reason, except under
// CI=true, where a missing prerequisite fails the run: CI must never pass by testing nothing.
package framework
