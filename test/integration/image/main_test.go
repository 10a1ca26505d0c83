// Package image tests the manager's image as a cluster runs it: built by make image, started by
// podman (through hack/podman-run.sh) with the Deployment's security settings, against a real
// kube-apiserver and etcd and a real ovsdb-server reached over TCP. It also checks that the
// binary the image ships builds byte for byte the same twice.
//
// podman runs containers only as root here; without root or podman the tests skip outside CI and
// fail under CI=true (make tools installs podman: hack/ensure-podman.sh).
package image

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/samplecrd/samplecrd-controller/test/integration/framework"
)

var env = framework.NewEnvironment()

// pidLabel marks the containers of a test binary with its process id, so that a later run removes
// those a killed run could not (a test binary killed by its timeout runs no cleanup).
const pidLabel = "io.samplecrd.image-test.pid"

func TestMain(m *testing.M) {
	removeOrphanedContainers()
	code := env.Run(m)
	removeTestImage()
	os.Exit(code)
}

// removeOrphanedContainers removes the containers of test binaries that are gone.
func removeOrphanedContainers() {
	if _, err := exec.LookPath("podman"); err != nil || os.Geteuid() != 0 {
		return
	}
	out, err := exec.Command("podman", "ps", "--all", "--filter", "label="+pidLabel,
		"--format", `{{.ID}} {{index .Labels "`+pidLabel+`"}}`).Output()
	if err != nil {
		fmt.Fprintf(os.Stderr, "listing the containers of earlier runs: %v\n", err)
		return
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		id, pid, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if n, err := strconv.Atoi(pid); err == nil && n != os.Getpid() {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", n)); err == nil {
				// That run still goes on.
				continue
			}
		}
		if out, err := exec.Command("podman", "rm", "--force", "--time", "0", id).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "removing container %s of an earlier run: %v: %s\n", id, err, out)
		}
	}
}
