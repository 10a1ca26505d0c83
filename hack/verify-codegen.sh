#!/usr/bin/env bash
# Fails when the generated code or the CRD differ from what the API types produce, and names the fix.
# It regenerates into a temporary copy of the repository, so the working tree is never touched.
set -o errexit -o nounset -o pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TMP="$(mktemp -d)"
trap 'rm -rf "${TMP}"' EXIT

# A copy of what generation reads and writes; bin/ is shared so the generators build once.
cp -a "${REPO_ROOT}/go.mod" "${REPO_ROOT}/go.sum" "${REPO_ROOT}/hack" "${REPO_ROOT}/pkg" "${REPO_ROOT}/config" "${TMP}/"
mkdir -p "${TMP}/bin" && ln -s "${REPO_ROOT}/bin/codegen" "${TMP}/bin/codegen" 2>/dev/null || true

"${REPO_ROOT}/hack/update-codegen.sh" "${TMP}" >/dev/null

status=0
for dir in pkg config/crd; do
    if ! diff -Naupr "${REPO_ROOT}/${dir}" "${TMP}/${dir}" >"${TMP}/diff.txt"; then
        cat "${TMP}/diff.txt"
        status=1
    fi
done
if [[ ${status} -ne 0 ]]; then
    echo >&2
    echo "Generated code or the CRD are out of date with pkg/apis. Run 'make generate' (hack/update-codegen.sh) and commit the result." >&2
    exit 1
fi
echo "Generated code and CRD are up to date."
