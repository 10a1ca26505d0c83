#!/usr/bin/env bash
# Makes sure the OVN tools that the OVN integration tests (test/integration/ovn) run are installed:
# ovsdb-server, ovsdb-tool, ovn-nbctl and the OVN northbound schema, which Debian and Ubuntu ship in
# the package ovn-central. The tests start their own ovsdb-server on a temporary socket; they need no
# OVN service running.
set -o errexit -o nounset -o pipefail

SCHEMA=/usr/share/ovn/ovn-nb.ovsschema
INSTALL="apt-get update && apt-get install -y --no-install-recommends ovn-central"

# have finds a command in PATH or in the sbin directories, which are not always in a user's PATH.
have() {
    command -v "$1" >/dev/null 2>&1 || [[ -x "/usr/sbin/$1" || -x "/usr/local/sbin/$1" || -x "/sbin/$1" ]]
}

installed() {
    have ovsdb-server && have ovsdb-tool && have ovn-nbctl && [[ -f "${SCHEMA}" ]]
}

if installed; then
    echo "OVN is installed: ovsdb-server, ovsdb-tool, ovn-nbctl and ${SCHEMA} are there."
    exit 0
fi

if [[ "${EUID}" -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    echo "OVN is not installed (ovsdb-server, ovsdb-tool, ovn-nbctl and ${SCHEMA} are needed)." >&2
    echo "On Debian or Ubuntu, run as root:" >&2
    echo "    ${INSTALL}" >&2
    exit 1
fi

echo "Installing OVN (ovn-central) with apt-get."
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends ovn-central

# The package starts its services only through systemd. Where systemd runs, stop and disable the
# databases and ovn-northd it just started: the tests do not use them, and nothing should write to
# OVN on a test machine.
if [[ -d /run/systemd/system ]]; then
    echo "Stopping the OVN services the package started (the tests run their own ovsdb-server)."
    for unit in ovn-central ovn-northd ovn-ovsdb-server-nb ovn-ovsdb-server-sb; do
        systemctl disable --now "${unit}.service" >/dev/null 2>&1 || true
    done
fi

if ! installed; then
    echo "ovn-central was installed but ovsdb-server, ovsdb-tool, ovn-nbctl or ${SCHEMA} is still missing." >&2
    exit 1
fi
echo "OVN is installed."
