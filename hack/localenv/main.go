// Command localenv runs the project on one machine with no cluster: etcd and kube-apiserver
// (through envtest, from the binaries hack/build-control-plane.sh builds), an OVN northbound
// ovsdb-server, the CRD and the admission policy, a control-plane Node, a few pods and the example
// Network, and, for run, the manager in the foreground. Everything lives in one state directory, .local by default.
//
// Run it from the repository root; the Makefile's run, local-up and local-down targets do:
//
//	go run ./hack/localenv run [--dir DIR] [-- MANAGER-FLAGS...]
//	go run ./hack/localenv up [--dir DIR]
//	go run ./hack/localenv down [--dir DIR]
//
// To look at it, bin/control-plane/kubectl (built beside kube-apiserver) with DIR/kubeconfig.
// docs/local.md describes the environment, its files and how it stops.
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/pflag"
	"k8s.io/klog/v2"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/samplecrd/samplecrd-controller/internal/testenv"
)

// defaultDir is the state directory unless --dir says otherwise.
const defaultDir = ".local"

const usage = `Usage: go run ./hack/localenv COMMAND [--dir DIR] [ARGS]

Runs the project on this machine with no cluster. State, logs and the kubeconfig go to DIR
(default .local). Run it from the repository root.

Commands:
  run                           start everything and the manager in the foreground; Ctrl-C stops it all
                                (flags after -- go to the manager, e.g. run -- -v=4)
  up                            start the environment without the manager, in the background
  down                          stop what up started, and wait until every process is gone

Look at it with bin/control-plane/kubectl --kubeconfig DIR/kubeconfig get networks, and so on.
`

func main() {
	// Before anything else: this program is also the launcher of its etcd and kube-apiserver.
	testenv.RunLauncher()
	handleSIGPIPE()
	// envtest logs through controller-runtime's logger, which complains when it is never set.
	ctrllog.SetLogger(klog.NewKlogr())
	os.Exit(mainWithArgs(os.Args[1:]))
}

func mainWithArgs(args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(term.Out, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	command := args[0]
	fs := pflag.NewFlagSet("localenv "+command, pflag.ContinueOnError)
	dir := fs.String("dir", defaultDir, "State directory: kubeconfig, OVN socket, data and logs.")
	lockFd := fs.Int("lock-fd", 0, "File descriptor of the state directory's lock, inherited from up.")
	_ = fs.MarkHidden("lock-fd")
	fs.Usage = func() { fmt.Fprint(term.Err, usage) }
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		return 2
	}
	positional := fs.Args()
	var extra []string
	if at := fs.ArgsLenAtDash(); at >= 0 {
		positional, extra = fs.Args()[:at], fs.Args()[at:]
	}
	*dir = displayPath(*dir)

	var err error
	switch command {
	case "run":
		if err = checkRepoRoot(); err == nil && len(positional) > 0 {
			err = fmt.Errorf("run takes no arguments; manager flags go after --")
		}
		if err == nil {
			return cmdRun(*dir, extra)
		}
	case "up":
		if err = checkRepoRoot(); err == nil {
			return cmdUp(*dir)
		}
	case "serve":
		if err = checkRepoRoot(); err == nil {
			return cmdServe(*dir, *lockFd)
		}
	case "down":
		err = cmdDown(*dir)
	default:
		fmt.Fprintf(term.Err, "localenv: unknown command %q\n\n%s", command, usage)
		return 2
	}
	if err != nil {
		fmt.Fprintf(term.Err, "localenv %s: %v\n", command, err)
		return 1
	}
	return 0
}

// checkRepoRoot makes sure the working directory is the repository root, where the relative paths
// of the CRD, the admission policy, the example and the control-plane binaries are.
func checkRepoRoot() error {
	for _, p := range []string{filepath.Join("config", "crd", "bases"), filepath.Join("config", "policy"), exampleFile, filepath.Join("hack", "build-control-plane.sh")} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("run from the repository root (where the Makefile is): %w", err)
		}
	}
	return nil
}

// step prints the start of a step.
func step(msg string) {
	fmt.Fprintf(term.Out, "==> %s\n", msg)
}

// dirArg is what to add to a make command line to name the state directory dir.
func dirArg(dir string) string {
	if dir == defaultDir {
		return ""
	}
	return " LOCAL_DIR=" + dir
}
