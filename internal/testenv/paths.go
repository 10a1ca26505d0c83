package testenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// ErrMissingPrerequisite marks an error for something that must be installed or built first: the
// control plane in bin/control-plane, or OVN. Tests may turn it into a skip outside CI.
var ErrMissingPrerequisite = errors.New("missing prerequisite")

// assetsEnv names another directory of control-plane binaries, as for every envtest user.
const assetsEnv = "KUBEBUILDER_ASSETS"

// ControlPlaneDir is where the control-plane binaries are: the directory KUBEBUILDER_ASSETS names,
// or bin/control-plane under the repository root, where hack/build-control-plane.sh builds them.
func ControlPlaneDir(root string) string {
	if dir := os.Getenv(assetsEnv); dir != "" {
		return dir
	}
	return filepath.Join(root, "bin", "control-plane")
}

// CRDDir holds the project's generated CustomResourceDefinitions.
func CRDDir(root string) string {
	return filepath.Join(root, "config", "crd", "bases")
}

// PolicyDir holds the project's admission policies and their kustomization, which
// config/default includes.
func PolicyDir(root string) string {
	return filepath.Join(root, "config", "policy")
}

// InCI reports whether CI=true: there, nothing may skip for a missing prerequisite.
func InCI() bool {
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	return ci
}

// controlPlaneBinaries are the binaries StartControlPlane runs.
var controlPlaneBinaries = []string{"etcd", "kube-apiserver"}

// CheckControlPlane returns an error wrapping ErrMissingPrerequisite when one of the binaries
// (etcd and kube-apiserver when none is named) is not in ControlPlaneDir.
func CheckControlPlane(root string, names ...string) error {
	if len(names) == 0 {
		names = controlPlaneBinaries
	}
	dir := ControlPlaneDir(root)
	for _, name := range names {
		path := filepath.Join(dir, name)
		info, err := os.Stat(path)
		if err == nil && (info.IsDir() || info.Mode()&0o111 == 0) {
			err = errors.New("not an executable file")
		}
		if err != nil {
			return fmt.Errorf("%w: %s (run 'make tools' to build the control plane): %v", ErrMissingPrerequisite, path, err)
		}
	}
	return nil
}
