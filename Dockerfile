# The manager's image: the static binary of `make build-static` and nothing else. `make image`
# builds it (with podman, offline: there is no base image to pull); see docs/manager.md.
FROM scratch

# Filled in by make image from git; see the Makefile.
ARG VERSION=unknown
ARG REVISION=unknown

LABEL org.opencontainers.image.title="samplecrd-controller" \
      org.opencontainers.image.description="Kubernetes controller manager: Networks reconciled into OVN, podcount, podwatch and nodewatch" \
      org.opencontainers.image.source="https://github.com/samplecrd/samplecrd-controller" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"

COPY bin/static/samplecrd-controller /samplecrd-controller

# The Deployment's user (config/manager/manager.yaml): not root, and not a user of the host.
USER 65532:65532

ENTRYPOINT ["/samplecrd-controller"]
