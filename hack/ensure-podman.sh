#!/usr/bin/env bash
# Makes sure podman and runc are installed, which `make image` and the image test
# (test/integration/image) use to build and run the manager's image. Debian and Ubuntu ship both
# as packages. podman needs no daemon; it runs containers with runc here because crun, podman's
# default runtime on Debian, fails on hosts with hybrid cgroups (see hack/podman-run.sh).
set -o errexit -o nounset -o pipefail

INSTALL="apt-get update && apt-get install -y --no-install-recommends podman runc"

# have finds a command in PATH or in the sbin directories, which are not always in a user's PATH.
have() {
    command -v "$1" >/dev/null 2>&1 || [[ -x "/usr/sbin/$1" || -x "/usr/local/sbin/$1" || -x "/sbin/$1" ]]
}

installed() {
    have podman && have runc
}

if installed; then
    echo "podman is installed: podman and runc are there."
    exit 0
fi

if [[ "${EUID}" -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    echo "podman is not installed (podman and runc are needed)." >&2
    echo "On Debian or Ubuntu, run as root:" >&2
    echo "    ${INSTALL}" >&2
    exit 1
fi

echo "Installing podman and runc with apt-get."
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends podman runc

if ! installed; then
    echo "podman and runc were installed but podman or runc is still missing." >&2
    exit 1
fi
echo "podman is installed."
