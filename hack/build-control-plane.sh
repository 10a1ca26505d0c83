#!/usr/bin/env bash
# Builds the test control plane (kube-apiserver and etcd) from the versions pinned in
# hack/tools/go.mod into bin/control-plane/, the directory envtest is pointed at.
#
# The build takes several minutes on a small machine, so it is skipped when the binaries there were
# built from the same pinned versions (recorded in bin/control-plane/VERSION).
set -o errexit -o nounset -o pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="${REPO_ROOT}/hack/tools"
OUT="${REPO_ROOT}/bin/control-plane"

cd "${TOOLS}"
k8s_version="$(go list -m -f '{{.Version}}' k8s.io/kubernetes)"
etcd_version="$(go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)"
want="kubernetes ${k8s_version} etcd ${etcd_version} $(go env GOVERSION)"

if [[ -x "${OUT}/kube-apiserver" && -x "${OUT}/etcd" && -f "${OUT}/VERSION" && "$(cat "${OUT}/VERSION")" == "${want}" ]]; then
    echo "Control plane is up to date in bin/control-plane (${want})."
    exit 0
fi

echo "Building the test control plane (${want}) into bin/control-plane."
echo "The first build compiles Kubernetes and etcd from source and takes several minutes."
mkdir -p "${OUT}"
rm -f "${OUT}/VERSION"
start=${SECONDS}
echo "  kube-apiserver ${k8s_version} ..."
go build -o "${OUT}/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
echo "  etcd ${etcd_version} ..."
go build -o "${OUT}/etcd" go.etcd.io/etcd/server/v3
echo "${want}" >"${OUT}/VERSION"
echo "Built the control plane in $((SECONDS - start)) s."
