// Package testenv starts what the integration tests, the benchmark and the local environment
// (hack/localenv) run against, in one way for all three: etcd and kube-apiserver through
// controller-runtime's envtest, from the binaries hack/build-control-plane.sh builds into
// bin/control-plane, with the project's CRDs and admission policies (config/policy) installed;
// and an OVN northbound ovsdb-server on a fresh database. It also identifies, watches and measures processes through /proc (with
// github.com/prometheus/procfs).
//
// Every child process it starts dies with the process that started it, SIGKILL included (see
// StartCommand and ControlPlaneOptions.LauncherDir).
package testenv
