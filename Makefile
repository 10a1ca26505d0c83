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

# The manager's image in the rendered manifests, e.g. IMG=registry.example.com/samplecrd-controller:v0.1.0.
IMG ?= samplecrd-controller:latest

.PHONY: manifests
manifests: ## Render config/default with the image IMG into dist/install.yaml, and config/prometheus and config/grafana into dist/monitoring.yaml.
	$(GO) run ./hack/manifests --image '$(IMG)' --output dist/install.yaml config/default
	$(GO) run ./hack/manifests --output dist/monitoring.yaml config/prometheus config/grafana

.PHONY: tools
tools: ## Build the test control plane (kube-apiserver, etcd) and kubectl when missing or stale; install ovsdb-server when missing.
	hack/build-control-plane.sh
	hack/ensure-ovn.sh

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
# fuzz runs each of them. Their seeds, and every failing input found, are in the packages'
# testdata/fuzz/<name>/, which plain go test runs as tests.
FUZZ_TARGETS := FuzzSpecValidation:./pkg/controller/network FuzzPlan:./pkg/backend/ovn FuzzNames:./pkg/backend/ovn
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
			cat "$$log"; rm -f "$$log"; exit 1; \
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
	rm -rf bin/codegen bin/samplecrd-controller bin/localenv
