#!/usr/bin/env bash
# Runs a container with podman as the manager's Deployment (config/manager/manager.yaml) runs it:
#
#     hack/podman-run.sh [podman run options] IMAGE [manager flags]
#
# for example
#
#     hack/podman-run.sh --rm -v "$PWD/kubeconfig:/kubeconfig:ro" samplecrd-controller:latest \
#         --kubeconfig=/kubeconfig --ovn-nb=tcp:127.0.0.1:6641 --leader-elect=false
#
# test/integration/image runs the image through this script, so that the test and a person run it
# alike.
set -o errexit -o nounset -o pipefail

# PODMAN_GLOBAL_FLAGS and PODMAN_HOST_FLAGS are what podman needs on hosts like the project's test
# machines (Debian 12, hybrid cgroups v1, processes limited to 20000 open files and no
# CAP_SYS_RESOURCE), before and after the run command:
#   --runtime /usr/sbin/runc       crun, podman's preferred runtime where installed, fails to
#                                  create containers on hybrid cgroups ("cgroups in hybrid mode
#                                  not supported"); runc works.
#   --cgroup-manager=cgroupfs      no systemd session to ask for a cgroup.
#   --network host                 the manager reaches the API server and OVN on the host's
#                                  loopback addresses, as the tests start them.
#   --ulimit nofile=1024:4096      podman raises a root container's limits to 1048576 open files
#   --ulimit nproc=1024:4096       and the host's process limit, which runc cannot set there:
#                                  "error setting rlimit type 7: operation not permitted".
PODMAN="${PODMAN:-podman}"
PODMAN_GLOBAL_FLAGS=(--runtime /usr/sbin/runc --cgroup-manager=cgroupfs)
PODMAN_HOST_FLAGS=(--network host --ulimit nofile=1024:4096 --ulimit nproc=1024:4096)

# PODMAN_SECURITY_FLAGS are the Deployment's securityContext: user 65532, a read-only root file
# system with no writable /tmp either (podman's --read-only adds tmpfs mounts, Kubernetes does
# not), no capabilities, no privilege escalation.
PODMAN_SECURITY_FLAGS=(
    --user 65532:65532
    --read-only --read-only-tmpfs=false
    --cap-drop=ALL
    --security-opt=no-new-privileges
)

exec "${PODMAN}" "${PODMAN_GLOBAL_FLAGS[@]}" run "${PODMAN_HOST_FLAGS[@]}" "${PODMAN_SECURITY_FLAGS[@]}" "$@"
