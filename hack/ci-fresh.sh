#!/usr/bin/env bash
# Runs CI as a fresh machine would: clones the repository's committed HEAD into a temporary
# directory and runs .ci/run there with CI=true, with an empty Go module cache, build cache and
# GOPATH of its own, then prints how long it took and removes everything. Only what is committed
# is tested.
#
# Building the control plane from source takes longer than the rest, so when this checkout has a
# bin/control-plane, it is copied into the clone, and the run says so; hack/build-control-plane.sh
# there still rebuilds whatever is stale. CI_FRESH_CONTROL_PLANE=build builds it from scratch.
#
# Usage: hack/ci-fresh.sh, or make ci-fresh [CI_FRESH_CONTROL_PLANE=build]
set -o errexit -o nounset -o pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONTROL_PLANE="${CI_FRESH_CONTROL_PLANE:-copy}"
if [[ "${CONTROL_PLANE}" != copy && "${CONTROL_PLANE}" != build ]]; then
    echo "CI_FRESH_CONTROL_PLANE must be 'copy' (the default) or 'build', not '${CONTROL_PLANE}'." >&2
    exit 2
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/ci-fresh.XXXXXX")"
export GOPATH="${WORK}/gopath"
export GOMODCACHE="${GOPATH}/pkg/mod"
export GOCACHE="${WORK}/gocache"
# Nothing of this machine's setup may leak in: the clone's bin/control-plane, no GOBIN, and the
# clone's make is no sub-make of the one that runs this script.
unset KUBEBUILDER_ASSETS GOBIN MAKEFLAGS MFLAGS MAKELEVEL

cleanup() {
    # The module cache is read-only; go clean removes it, chmod is the fallback.
    if [[ -d "${GOMODCACHE}" ]]; then
        go clean -modcache >/dev/null 2>&1 || chmod -R u+w "${GOMODCACHE}"
    fi
    rm -rf "${WORK}"
}
trap cleanup EXIT

start=${SECONDS}
head="$(git -C "${REPO_ROOT}" rev-parse HEAD)"
if [[ -n "$(git -C "${REPO_ROOT}" status --porcelain --untracked-files=no)" ]]; then
    echo "ci-fresh: ${REPO_ROOT} has uncommitted changes; they are not tested, only HEAD is."
fi
echo "ci-fresh: cloning ${head:0:12} into ${WORK}/repo, with empty GOMODCACHE and GOCACHE there."
git clone --quiet --no-checkout "${REPO_ROOT}" "${WORK}/repo"
git -C "${WORK}/repo" checkout --quiet --detach "${head}"

if [[ "${CONTROL_PLANE}" == copy && -d "${REPO_ROOT}/bin/control-plane" ]]; then
    echo "ci-fresh: copying the built bin/control-plane from ${REPO_ROOT} instead of building it (CI_FRESH_CONTROL_PLANE=build builds it)."
    mkdir -p "${WORK}/repo/bin"
    cp -a "${REPO_ROOT}/bin/control-plane" "${WORK}/repo/bin/"
else
    echo "ci-fresh: building the control plane from source in the clone (several minutes)."
fi

echo "ci-fresh: running CI=true .ci/run"
status=0
(cd "${WORK}/repo" && CI=true bash .ci/run) || status=$?

elapsed=$((SECONDS - start))
if [[ ${status} -eq 0 ]]; then
    echo "ci-fresh: passed in $((elapsed / 60)) min $((elapsed % 60)) s."
else
    echo "ci-fresh: FAILED (status ${status}) after $((elapsed / 60)) min $((elapsed % 60)) s." >&2
fi
exit "${status}"
