#!/usr/bin/env bash
# Builds the test control plane (kube-apiserver and etcd) and kubectl from the versions pinned in
# hack/tools/go.mod into bin/control-plane/, the directory envtest is pointed at.
#
# A build takes several minutes on a small machine, so each binary is built only when it is missing
# or was built from another version of its module or of Go. What a binary was built from is read
# from the binary itself (go version -m), so the check cannot disagree with what is there: a
# bin/control-plane with kube-apiserver and etcd of the pinned versions gets kubectl alone.
# bin/control-plane/VERSION lists the result for people, and is written once every binary is built.
set -o errexit -o nounset -o pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="${REPO_ROOT}/hack/tools"
OUT="${REPO_ROOT}/bin/control-plane"

# The binaries: name in bin/control-plane, main package, and the module that holds it.
BINARIES=(
    "kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes"
    "etcd go.etcd.io/etcd/server/v3 go.etcd.io/etcd/server/v3"
    "kubectl k8s.io/kubernetes/cmd/kubectl k8s.io/kubernetes"
)

# built_from BINARY prints what BINARY was built from, as "MODULE VERSION GOVERSION", or nothing
# when it is missing or carries no build information.
built_from() {
    go version -m "$1" 2>/dev/null | awk 'NR == 1 { gover = $NF } $1 == "mod" { print $2, $3, gover; exit }'
}

cd "${TOOLS}"
go_version="$(go env GOVERSION)"
declare -A module_version
while read -r module version; do
    module_version["${module}"]="${version}"
done < <(go list -m -f '{{.Path}} {{.Version}}' k8s.io/kubernetes go.etcd.io/etcd/server/v3)

stale=()
summary=""
for entry in "${BINARIES[@]}"; do
    read -r name pkg module <<<"${entry}"
    want="${module} ${module_version[${module}]} ${go_version}"
    summary+="${name} ${want}"$'\n'
    if [[ ! -x "${OUT}/${name}" || "$(built_from "${OUT}/${name}")" != "${want}" ]]; then
        stale+=("${entry}")
    fi
done

if [[ ${#stale[@]} -eq 0 ]]; then
    echo "Control plane is up to date in bin/control-plane (kubernetes ${module_version[k8s.io/kubernetes]}, etcd ${module_version[go.etcd.io/etcd/server/v3]}, ${go_version})."
    exit 0
fi

names=()
for entry in "${stale[@]}"; do
    read -r name _ <<<"${entry}"
    names+=("${name}")
done
echo "Building ${names[*]} into bin/control-plane (from hack/tools/go.mod, with ${go_version})."
echo "Each compiles from source: the first build takes several minutes."
mkdir -p "${OUT}"
rm -f "${OUT}/VERSION"
start=${SECONDS}
for entry in "${stale[@]}"; do
    read -r name pkg module <<<"${entry}"
    echo "  ${name} (${module} ${module_version[${module}]}) ..."
    go build -o "${OUT}/${name}" "${pkg}"
done
printf '%s' "${summary}" >"${OUT}/VERSION"
echo "Built ${names[*]} in $((SECONDS - start)) s."
