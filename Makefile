# image-pin-webhook: `make demo` runs it all locally, `make test` runs every test.
SHELL := /usr/bin/env bash
GO ?= go
BIN := $(CURDIR)/bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
# How long each fuzzer runs: FUZZTIME in `make fuzz`, UNIT_FUZZTIME in `make test`.
# make test counts executions (Nx) rather than seconds: a duration makes Go
# 1.26's fuzzing coordinator fail now and then with a bare "context deadline
# exceeded" as the time runs out (golang/go#75804, fixed in Go 1.27), and a
# count does the same work on a fast machine as on a busy one. The minimizing
# of a new input is bounded the same way (its default is 60s each).
FUZZTIME ?= 1m
UNIT_FUZZTIME ?= 2000x
UNIT_FUZZMINIMIZE ?= 200x
FUZZMINIMIZE ?= 60s
# Test binaries are kept in bin/test (go test -o DIR/): a package whose
# binary is up to date runs without being linked again, which was half the
# CPU of a warm unit-race. Results are never cached (-count=1).
TESTBIN := $(BIN)/test
# How many end-to-end tests run at once (go test -parallel, whose default is
# the number of cores): they mostly wait on the API server, the controllers
# and their own processes, so all of them at once finish first, even on 2 cores.
E2E_PARALLEL ?= 64

.PHONY: all build test unit unit-race unit-fuzz unit-plain unit-in-order e2e lint fuzz bench soak demo assets clean generate verify-generate image

all: build

build: ## the webhook binary into bin/
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/image-pin-webhook ./cmd/webhook

assets: ## kube-apiserver, etcd and registry for the end-to-end tests (setup-envtest, else built from Go modules)
	@./hack/envtest-assets.sh >/dev/null

lint: verify-generate ## gofmt, go vet, and the generated CRD and deepcopy code up to date
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

CONTROLLER_GEN := $(BIN)/controller-gen
CRD_DIR := charts/image-pin-webhook/crds

$(CONTROLLER_GEN): hack/tools/controller-gen/go.mod
	cd hack/tools/controller-gen && $(GO) build -o $(CONTROLLER_GEN) sigs.k8s.io/controller-tools/cmd/controller-gen

generate: $(CONTROLLER_GEN) ## the ImageResolution CRD and deepcopy code, from api/ (controller-gen)
	$(CONTROLLER_GEN) object paths=./api/...
	$(CONTROLLER_GEN) crd:crdVersions=v1 paths=./api/... output:crd:artifacts:config=$(CRD_DIR)

verify-generate: $(CONTROLLER_GEN) ## fails when the committed CRD or deepcopy code differs from what controller-gen generates
	@tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	$(CONTROLLER_GEN) object paths=./api/... output:object:dir=$$tmp/api && \
	$(CONTROLLER_GEN) crd:crdVersions=v1 paths=./api/... output:crd:dir=$$tmp/crds && \
	diff -u $(CRD_DIR)/image-pin.io_imageresolutions.yaml $$tmp/crds/image-pin.io_imageresolutions.yaml && \
	diff -u api/v1alpha1/zz_generated.deepcopy.go $$tmp/api/zz_generated.deepcopy.go || \
		{ echo "the CRD or the deepcopy code is out of date: run make generate"; exit 1; }

unit: unit-race unit-plain unit-fuzz ## unit tests, race detector on, plus a few thousand runs of each fuzzer

# The chart and docs tests render YAML through helm and read files on one
# goroutine: no code of ours runs concurrently there, and under the race
# detector they took five times the CPU (docs/development.md, Suite time).
PLAIN_PKGS := ./test/chart ./test/docs

# go test -o DIR/ names each binary after its package's last element, so
# packages that share one go to directories of their own: the second run
# takes the first in import-path order (cmd/webhook, a second), the first
# the rest (webhook, among the longest).
unit-race: assets ## every package but the end-to-end ones, race detector on (state and the namespace gate on a real kube-apiserver)
	@export KUBEBUILDER_ASSETS=$$(./hack/envtest-assets.sh); \
	pkgs=$$($(GO) list ./... | grep -v -e /test/envtest -e /test/faults -e /test/chart -e /test/docs); \
	first=$$(echo "$$pkgs" | tac | awk -F/ '!seen[$$NF]++'); rest=$$(echo "$$pkgs" | tac | awk -F/ 'seen[$$NF]++'); \
	mkdir -p $(TESTBIN)/race $(TESTBIN)/race2; \
	$(GO) test -race -count=1 -o $(TESTBIN)/race/ $$first && \
	{ [ -z "$$rest" ] || $(GO) test -race -count=1 -o $(TESTBIN)/race2/ $$rest; }

unit-plain: ## the chart and docs tests, without the race detector
	@mkdir -p $(TESTBIN)/plain
	$(GO) test -count=1 -o $(TESTBIN)/plain/ $(PLAIN_PKGS)

unit-fuzz: ## each fuzzer for UNIT_FUZZTIME executions
	@$(MAKE) --no-print-directory fuzz FUZZTIME=$(UNIT_FUZZTIME) FUZZMINIMIZE=$(UNIT_FUZZMINIMIZE)

e2e: assets build ## end-to-end tests on a real kube-apiserver, etcd and registry, and the fault matrix
	@mkdir -p $(TESTBIN)/e2e
	KUBEBUILDER_ASSETS=$$(./hack/envtest-assets.sh) IMAGE_PIN_WEBHOOK_BIN=$(BIN)/image-pin-webhook \
		$(GO) test -count=1 -timeout 20m -parallel $(E2E_PARALLEL) -o $(TESTBIN)/e2e/ ./test/envtest/... ./test/faults/...

# Two at a time, end-to-end first: it is the longest (its longest test
# alone is a minute) and waits much of the time, so it starts at once and
# the unit runs share the other slot, one after another (docs/development.md,
# Suite time).
# (make -j2 of the four would start whichever is ready first: the fuzzers
# before the race run, which then ran alone at the end.)
test: lint ## every test: lint, then end-to-end beside unit (race detector, chart and docs, short fuzzing)
	@$(MAKE) --no-print-directory -j2 e2e unit-in-order

unit-in-order: assets
	@$(MAKE) --no-print-directory unit-race && $(MAKE) --no-print-directory unit-plain && $(MAKE) --no-print-directory unit-fuzz

fuzz: ## each fuzzer for FUZZTIME (1m; make fuzz FUZZTIME=10m for a longer run)
	@mkdir -p $(TESTBIN)/fuzz; for spec in $$(grep -rl --include='*_test.go' '^func Fuzz' . | sort); do \
		pkg=$$(dirname $$spec); \
		for f in $$(grep -o '^func Fuzz[A-Za-z0-9_]*' $$spec | cut -d' ' -f2); do \
			echo "fuzz $$pkg $$f ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE) \
				-o $(TESTBIN)/fuzz/$$(echo $${pkg#./} | tr / _).test $$pkg || exit 1; \
		done; \
	done

bench: assets build ## Go benchmarks, then the load generator against the built binary (not part of make test)
	$(GO) test -run '^$$' -bench . -benchmem ./resolver/ ./webhook/
	KUBEBUILDER_ASSETS=$$(./hack/envtest-assets.sh) IMAGE_PIN_WEBHOOK_BIN=$(BIN)/image-pin-webhook \
		$(GO) run ./hack/loadgen $(LOADGEN_FLAGS)

soak: assets build ## 20,000 admissions over HTTPS while the registry flaps (not part of make test)
	KUBEBUILDER_ASSETS=$$(./hack/envtest-assets.sh) IMAGE_PIN_WEBHOOK_BIN=$(BIN)/image-pin-webhook \
		$(GO) run ./hack/loadgen -soak $${SOAK_ADMISSIONS:-20000}

demo: assets build ## run API server, registry, webhook and sample workloads locally
	./hack/demo.sh

clean:
	rm -rf $(BIN)

IMAGE ?= ghcr.io/image-pin/image-pin-webhook:$(VERSION)
PLATFORMS ?= linux/amd64,linux/arm64
image: ## the container image IMAGE for PLATFORMS, with docker buildx or podman (push it before helm install)
	@if command -v docker >/dev/null 2>&1; then \
		docker buildx build --platform $(PLATFORMS) --build-arg VERSION=$(VERSION) -t $(IMAGE) $(IMAGE_FLAGS) . ; \
	elif command -v podman >/dev/null 2>&1; then \
		podman build --platform $(PLATFORMS) --build-arg VERSION=$(VERSION) --manifest $(IMAGE) . ; \
	else echo "make image needs docker (with buildx) or podman; neither is on PATH" >&2; exit 1; fi
