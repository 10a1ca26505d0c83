# samplecrd-controller: `make help` lists the targets.

SHELL := /usr/bin/env bash -o errexit -o nounset -o pipefail
.DEFAULT_GOAL := help

GO ?= go
# Packages whose tests need nothing but Go, and those that start a control plane or ovsdb-server.
UNIT_PKGS := ./pkg/... ./cmd/... ./internal/... ./hack/localenv/... ./bench/
INTEGRATION_PKGS := ./test/...
TEST_FLAGS ?= -race -count=1 -timeout 45m
# State directory of make run and make local-up: kubeconfig, OVN socket, data and logs. The targets
# run a built bin/localenv rather than 'go run', which exits 1 after any Ctrl-C.
LOCAL_DIR ?= .local

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build every package, and the manager into bin/samplecrd-controller.
	$(GO) build ./...
	$(GO) build -o bin/samplecrd-controller ./cmd/samplecrd-controller

# The manager as its image ships it: static (CGO_ENABLED=0), -trimpath, with the version and commit
# of git stamped into pkg/version and no date, so that two builds of one commit are byte-identical
# (test/integration/image checks it). -buildvcs=false: the stamp carries the commit, and the build
# does not depend on the GOFLAGS of the machine.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo unknown)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
VERSION_PKG := github.com/samplecrd/samplecrd-controller/pkg/version
STATIC_LDFLAGS := -s -w -X $(VERSION_PKG).version=$(VERSION) -X $(VERSION_PKG).commit=$(COMMIT)
# Where make build-static writes the binary; the Dockerfile copies it from the default.
STATIC_OUT ?= bin/static/samplecrd-controller
# The image and the archive of make image-archive. IMG is what containerd (kind, ctr) makes of the
# Deployment's image samplecrd-controller:latest; podman would store that short name as
# localhost/samplecrd-controller, which a cluster does not find. The image's creation time is the
# commit's, not the build's. make manifests renders the Deployment with IMG too.
IMG ?= docker.io/library/samplecrd-controller:latest
IMAGE_ARCHIVE ?= bin/samplecrd-controller-image.tar
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
# The image is one file: podman builds it without caching intermediate images, which would only be
# left dangling, and saves it as is; to run it, hack/podman-run.sh holds the flags that this
# kind of host needs (runc, cgroupfs, host network, ulimits) and the Deployment's security settings.
PODMAN ?= podman

.PHONY: build-static
build-static: ## Build the manager as the image ships it (static, reproducible, version stamped) into STATIC_OUT (bin/static/).
	CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=false -ldflags '$(STATIC_LDFLAGS)' -o $(STATIC_OUT) ./cmd/samplecrd-controller

.PHONY: image
image: build-static ## Build the manager's image IMG (docker.io/library/samplecrd-controller:latest) with podman, installed when missing.
	hack/ensure-podman.sh
	$(PODMAN) build --layers=false --timestamp $(SOURCE_DATE_EPOCH) --build-arg VERSION=$(VERSION) --build-arg REVISION=$(COMMIT) -t $(IMG) .

.PHONY: image-archive
image-archive: image ## Write IMG to IMAGE_ARCHIVE (bin/samplecrd-controller-image.tar) for kind load image-archive or ctr images import.
	rm -f $(IMAGE_ARCHIVE)
	$(PODMAN) save --format docker-archive -o $(IMAGE_ARCHIVE) $(IMG)

.PHONY: run
run: ## Run the whole system locally (control plane, OVN, the example Network, the manager); Ctrl-C stops it all.
	$(GO) build -o bin/localenv ./hack/localenv
	bin/localenv run --dir $(LOCAL_DIR)

.PHONY: local-up
local-up: ## Start the control plane, OVN and the example objects in the background, without the manager.
	$(GO) build -o bin/localenv ./hack/localenv
	bin/localenv up --dir $(LOCAL_DIR)

.PHONY: local-down
local-down: ## Stop what local-up started and wait until every process is gone.
	$(GO) build -o bin/localenv ./hack/localenv
	bin/localenv down --dir $(LOCAL_DIR)

.PHONY: generate
generate: ## Regenerate deepcopy, clientset, informers, listers, apply configurations and the CRD.
	hack/update-codegen.sh

# make manifests sets the manager's image to IMG (above), e.g. IMG=registry.example.com/samplecrd-controller:v0.1.0.
.PHONY: manifests
manifests: ## Render config/default with the image IMG into dist/install.yaml, and config/prometheus and config/grafana into dist/monitoring.yaml.
	$(GO) run ./hack/manifests --image '$(IMG)' --output dist/install.yaml config/default
	$(GO) run ./hack/manifests --output dist/monitoring.yaml config/prometheus config/grafana

.PHONY: tools
tools: ## Build the test control plane (kube-apiserver, etcd) and kubectl when missing or stale; install ovsdb-server and podman when missing.
	hack/build-control-plane.sh
	hack/ensure-ovn.sh
	hack/ensure-podman.sh

.PHONY: test
test: tools ## Run every test (unit, integration, the fault suite's short form; with -race), then each fuzz target for 10s; builds what they need first.
	$(GO) test $(TEST_FLAGS) $(UNIT_PKGS) $(INTEGRATION_PKGS)
	$(MAKE) fuzz FUZZTIME=10s

.PHONY: test-unit
test-unit: ## Run the unit tests only.
	$(GO) test $(TEST_FLAGS) $(UNIT_PKGS)

.PHONY: test-integration
test-integration: tools ## Run the integration tests only.
	$(GO) test $(TEST_FLAGS) $(INTEGRATION_PKGS)

# The fuzz targets, as name:package (go test -fuzz takes one package at a time), and how long make
# fuzz runs each of them. Their seeds are in the packages' testdata/fuzz/<name>/ or in f.Add calls,
# every failing input found goes to testdata/fuzz/<name>/, and plain go test runs them all as tests.
FUZZ_TARGETS := FuzzSpecValidation:./pkg/controller/network FuzzPlan:./pkg/backend/ovn FuzzNames:./pkg/backend/ovn FuzzAllocator:./pkg/ipam
FUZZTIME ?= 10s
# The fuzzer minimises each new input that widens coverage before it goes on, for up to a minute
# by default, which would take most of a short run; a failing input is minimised as long.
FUZZMINIMIZETIME ?= 1s

.PHONY: fuzz
fuzz: ## Run each fuzz target for FUZZTIME (default 10s), one after another with one worker, and print its executions.
	@for target in $(FUZZ_TARGETS); do \
		name="$${target%%:*}"; pkg="$${target#*:}"; log="$$(mktemp)"; \
		echo "$(GO) test -run '^$$' -fuzz '^$$name\$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) -parallel 1 $$pkg"; \
		if ! $(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) -parallel 1 "$$pkg" >"$$log" 2>&1; then \
			if grep -q 'context deadline exceeded' "$$log" && ! grep -q 'Failing input written' "$$log"; then \
				echo "$$name: failed with \"context deadline exceeded\" at the end of FUZZTIME and no failing input: the Go fuzzing coordinator's race golang/go#75804 (fixed in Go 1.27), not a finding"; \
			else \
				cat "$$log"; rm -f "$$log"; exit 1; \
			fi; \
		fi; \
		execs="$$(grep -o 'execs: [0-9]*' "$$log" | tail -n 1 | cut -d ' ' -f 2 || true)"; rm -f "$$log"; \
		echo "$$name: $${execs:-0} executions in $(FUZZTIME)"; \
	done

.PHONY: faults
faults: tools ## Run the fault-injection suite's long form (1000 Networks a scenario, the manager built without -race), write docs/reliability.md; then fuzz for 2 minutes.
	$(GO) test -count=1 -timeout 40m ./test/faults/ -args -faults.networks=1000 -faults.race=false -faults.report=$(CURDIR)/docs/reliability.md
	$(MAKE) fuzz FUZZTIME=2m

# Flags of the benchmark ('go run ./bench -h' lists them), e.g. BENCH_FLAGS="-networks 200 -pods 2000".
BENCH_FLAGS ?=

.PHONY: bench
bench: tools ## Benchmark the manager against its baselines on a local control plane and OVN (BENCH_FLAGS=...); writes bench/results/. Then the CIDR conflict check.
	$(GO) build -o bin/samplecrd-controller ./cmd/samplecrd-controller
	$(GO) run ./bench $(BENCH_FLAGS)
	$(GO) test -run '^$$' -bench BenchmarkConflictCheck -benchtime 1s -count 3 ./pkg/controller/network/

.PHONY: ci-fresh
ci-fresh: ## Run CI (verify and every test, CI=true) on a fresh clone of HEAD with empty Go caches; copies bin/control-plane unless CI_FRESH_CONTROL_PLANE=build.
	hack/ci-fresh.sh

.PHONY: verify
verify: verify-codegen verify-mod verify-gofmt vet lint ## Run every check CI runs besides the tests.

.PHONY: verify-codegen
verify-codegen: ## Check that generated code and the CRD match the API types.
	hack/verify-codegen.sh

.PHONY: verify-mod
verify-mod: ## Check that go.mod and go.sum are tidy.
	@$(GO) mod tidy -diff || { echo "go.mod or go.sum is not tidy: run 'go mod tidy'"; exit 1; }

.PHONY: verify-gofmt
verify-gofmt: ## Check that every Go file is gofmt-ed.
	@files=$$(gofmt -l $$(git ls-files '*.go')); if [[ -n "$$files" ]]; then echo "gofmt would change these files (run 'gofmt -w' on them):"; echo "$$files"; exit 1; fi

.PHONY: vet
vet: ## Run go vet.
	$(GO) vet ./...

.PHONY: lint
lint: ## Run staticcheck (version pinned in go.mod) on the hand-written packages.
	$(GO) tool staticcheck $$($(GO) list ./... | grep -v /pkg/generated/)

.PHONY: clean
clean: ## Remove built binaries (keeps the control plane, which is slow to build).
	rm -rf bin/codegen bin/samplecrd-controller bin/localenv bin/static $(IMAGE_ARCHIVE)
