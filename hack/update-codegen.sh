#!/usr/bin/env bash
# Regenerates everything derived from the API types in pkg/apis:
#   - deepcopy functions (zz_generated.deepcopy.go),
#   - clientset with its fake, informers, listers and apply configurations (pkg/generated/),
#   - the CustomResourceDefinition (config/crd/bases/), from the kubebuilder markers.
# The generators are the versions pinned by the tool directives in go.mod.
#
# Usage: hack/update-codegen.sh [OUTPUT_ROOT]
# OUTPUT_ROOT defaults to the repository; hack/verify-codegen.sh points it at a copy.
set -o errexit -o nounset -o pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT_ROOT="$(cd "${1:-${REPO_ROOT}}" && pwd)"
THIS_PKG="github.com/samplecrd/samplecrd-controller"

cd "${REPO_ROOT}"
# go list -m prints no directory for a module that is not in the module cache yet, as on a fresh
# machine: download it first.
go mod download k8s.io/code-generator
CODEGEN_PKG="$(go list -m -f '{{.Dir}}' k8s.io/code-generator)"
if [[ ! -f "${CODEGEN_PKG}/kube_codegen.sh" ]]; then
    echo "k8s.io/code-generator has no kube_codegen.sh in '${CODEGEN_PKG}'." >&2
    exit 1
fi
# kube_codegen.sh installs its generators into GOBIN: keep them inside the project.
export GOBIN="${REPO_ROOT}/bin/codegen"
mkdir -p "${GOBIN}"
# shellcheck source=/dev/null
source "${CODEGEN_PKG}/kube_codegen.sh"

# The generators load packages from the module in the working directory: that of the output root.
cd "${OUT_ROOT}"

kube::codegen::gen_helpers \
    --boilerplate "${REPO_ROOT}/hack/boilerplate.go.txt" \
    "${OUT_ROOT}/pkg/apis"

kube::codegen::gen_client \
    --with-watch \
    --with-applyconfig \
    --output-dir "${OUT_ROOT}/pkg/generated" \
    --output-pkg "${THIS_PKG}/pkg/generated" \
    --boilerplate "${REPO_ROOT}/hack/boilerplate.go.txt" \
    "${OUT_ROOT}/pkg/apis"

go tool controller-gen crd paths=./pkg/apis/... output:crd:dir="${OUT_ROOT}/config/crd/bases"
