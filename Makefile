# Image URL to use all building/pushing image targets
IMG ?= controller:latest

# Get the currently used golang install path (in GOPATH/bin, unless GOBIN is set)
ifeq (,$(shell go env GOBIN))
GOBIN=$(shell go env GOPATH)/bin
else
GOBIN=$(shell go env GOBIN)
endif

# Tools. controller-gen is pinned in go.mod as a `tool` directive.
CONTROLLER_GEN ?= go tool controller-gen
KUBECTL ?= kubectl
# kustomize, helm, crd-ref-docs and golangci-lint are built from the Go
# module proxy into bin/ (see "Ecosystem tools" at the end); they stay out of
# go.mod.
LOCALBIN ?= $(shell pwd)/bin
KUSTOMIZE_VERSION ?= v5.8.2
HELM_VERSION ?= v3.22.0
CRD_REF_DOCS_VERSION ?= v0.3.0
GOLANGCI_LINT_VERSION ?= v2.15.0
KUSTOMIZE ?= $(LOCALBIN)/kustomize-$(KUSTOMIZE_VERSION)
HELM ?= $(LOCALBIN)/helm-$(HELM_VERSION)
CRD_REF_DOCS ?= $(LOCALBIN)/crd-ref-docs-$(CRD_REF_DOCS_VERSION)
GOLANGCI_LINT ?= $(LOCALBIN)/golangci-lint-$(GOLANGCI_LINT_VERSION)
# CONTAINER_TOOL defines the container tool to be used for building images.
CONTAINER_TOOL ?= docker

# ARGS are extra flags for the manager started by `make run`.
ARGS ?=

# Setting SHELL to bash allows bash commands to be executed by recipes.
# Options are set to exit when a recipe line exits non-zero or a piped command fails.
SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Display this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-15s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: ## Generate ClusterRole (config/rbac/role.yaml) and CustomResourceDefinitions (config/crd/bases), after go generate (vendor unions and rules, template path rule, field bounds, simulator vendor list).
	go generate ./api/... ./internal/template/... ./internal/vendorsim/...
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd paths="./..." output:crd:artifacts:config=config/crd/bases

.PHONY: generate
generate: ## Generate DeepCopy, DeepCopyInto and DeepCopyObject method implementations.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

.PHONY: fmt
fmt: ## Run go fmt against code.
	go fmt ./...

.PHONY: vet
vet: ## Run go vet against code.
	go vet ./...

.PHONY: lint
lint: $(GOLANGCI_LINT) ## Fail if any Go file is not gofmt-formatted, then run go vet and golangci-lint (.golangci.yml; first run builds it, ~7 min).
	@unformatted="$$(find . -type f -name '*.go' -not -path './.git/*' -not -path './vendor/*' -not -path '*/testdata/*' -exec gofmt -l {} +)"; \
	if [ -n "$$unformatted" ]; then echo "gofmt needed on:"; echo "$$unformatted"; exit 1; fi
	go vet ./...
	$(GOLANGCI_LINT) run ./...

.PHONY: envtest
envtest: ## Build (first time, ~5 min) or find the cached envtest assets (kube-apiserver, etcd) and print their directory.
	@bash hack/envtest-assets.sh

# TEST_PROCS is how many Ginkgo processes run the controller suite, each
# with its own kube-apiserver, etcd and manager; its specs mostly wait on
# them, so more processes than cores pay off.
TEST_PROCS ?= 6

.PHONY: test
test: manifests generate fmt vet ## Run unit and envtest integration tests (everything except test/e2e, test/chaos, test/bench, test/endpointbench, test/load); the controller suite runs on TEST_PROCS Ginkgo processes beside the other packages.
	@assets="$$(bash hack/envtest-assets.sh)"; \
	pkgs="$$(go list ./... | grep -v -e /test/e2e -e /test/chaos -e /test/bench -e /test/endpointbench -e /test/load -e '/internal/controller$$')"; \
	echo "KUBEBUILDER_ASSETS=$$assets"; \
	export KUBEBUILDER_ASSETS="$$assets"; \
	go tool ginkgo -p -procs=$(TEST_PROCS) -timeout 30m -covermode=set -coverprofile=cover-controller.out -output-dir=. ./internal/controller/ & ctrl=$$!; \
	go test $$pkgs -timeout 30m -covermode=set -coverprofile cover.out; rc=$$?; \
	wait $$ctrl || rc=1; \
	if [ -f cover-controller.out ]; then tail -n +2 cover-controller.out >> cover.out; rm -f cover-controller.out; fi; \
	exit $$rc

# FUZZTIME is how long `make fuzz` runs each fuzz target.
FUZZTIME ?= 10s

.PHONY: fuzz
fuzz: ## Run every Go fuzz target for FUZZTIME (default 10s) each; failing inputs are saved under testdata/fuzz.
	@FUZZTIME=$(FUZZTIME) bash hack/fuzz.sh

.PHONY: test-chaos
test-chaos: ## Process-level fault tests: manager SIGKILLed while issuing, API server restarted, leader killed (~5 min).
	@assets="$$(bash hack/envtest-assets.sh)"; \
	KUBEBUILDER_ASSETS="$$assets" go test ./test/chaos/ -count=1 -timeout 15m -v -ginkgo.v

.PHONY: test-load
test-load: ## One namespace floods the manager binary (1,000 one-second tokens, refresh storms, MiB tokens): another's first token within 15 s, peak RSS under 256 Mi (~5 min).
	@assets="$$(bash hack/envtest-assets.sh)"; \
	KUBEBUILDER_ASSETS="$$assets" go test ./test/load/ -count=1 -timeout 20m -v -ginkgo.v

# N is how many EmbedTokenRequests `make bench` applies; BENCH_ARGS adds flags
# of test/bench (-qps, -burst, -concurrency, -unrelated, -steady, -cpu-profile, -out).
N ?= 1000
BENCH_ARGS ?=

# ENDPOINT_CALLS is how many cached calls the token endpoint benchmark makes;
# ENDPOINT_BENCH_ARGS adds its flags (-endpointbench.cached-rate,
# -endpointbench.cold-conns).
ENDPOINT_CALLS ?= 60000
ENDPOINT_BENCH_ARGS ?=

.PHONY: bench
bench: ## Go benchmarks of the hot pure code, the token endpoint (test/endpointbench), then the operator at scale (N requests, default 1000); see docs/benchmarks.md.
	go test -run '^$$' -bench . -benchmem ./internal/controller/ ./internal/provider/ ./internal/provider/httpprovider/ ./internal/provider/jwt/
	@assets="$$(bash hack/envtest-assets.sh)"; \
	KUBEBUILDER_ASSETS="$$assets" go test ./test/endpointbench/ -run '^$$' -bench 'CachedPath' -benchtime $(ENDPOINT_CALLS)x -timeout 10m $(ENDPOINT_BENCH_ARGS); \
	KUBEBUILDER_ASSETS="$$assets" go test ./test/endpointbench/ -run '^$$' -bench 'ColdPath|Memory|PageViews' -benchtime 1x -timeout 15m $(ENDPOINT_BENCH_ARGS)
	@assets="$$(bash hack/envtest-assets.sh)"; \
	go build -o bin/bench ./test/bench; \
	KUBEBUILDER_ASSETS="$$assets" bin/bench -n $(N) $(BENCH_ARGS)

##@ Build

.PHONY: build
build: manifests generate fmt vet ## Build manager binary into bin/manager.
	go build -o bin/manager ./cmd/

.PHONY: run
run: manifests generate fmt vet ## Run the controller from your host against the cluster of the current kubeconfig (ARGS: extra manager flags).
	go run ./cmd/ $(ARGS)

# No Docker engine runs on this project's development and CI machines; these
# targets are for users building the image on their own hosts.
.PHONY: docker-build
docker-build: ## Build docker image with the manager.
	$(CONTAINER_TOOL) build -t $(IMG) .

.PHONY: docker-push
docker-push: ## Push docker image with the manager.
	$(CONTAINER_TOOL) push $(IMG)

.PHONY: build-installer
build-installer: manifests $(KUSTOMIZE) ## Generate a single install.yaml (CRDs, RBAC and Deployment, image IMG) in dist/.
	mkdir -p dist
	$(KUSTOMIZE) build config/default | sed 's|image: controller:latest|image: $(IMG)|' > dist/install.yaml

##@ Deployment

ifndef ignore-not-found
  ignore-not-found = false
endif

.PHONY: install
install: manifests $(KUSTOMIZE) ## Install CRDs into the K8s cluster of the current kubeconfig.
	$(KUSTOMIZE) build config/crd | $(KUBECTL) apply --server-side -f -

.PHONY: uninstall
uninstall: manifests $(KUSTOMIZE) ## Uninstall CRDs from the K8s cluster. Call with ignore-not-found=true to ignore resource not found errors during deletion.
	$(KUSTOMIZE) build config/crd | $(KUBECTL) delete --ignore-not-found=$(ignore-not-found) -f -

.PHONY: deploy
deploy: manifests $(KUSTOMIZE) ## Deploy controller (image IMG) to the K8s cluster of the current kubeconfig.
	$(KUSTOMIZE) build config/default | sed 's|image: controller:latest|image: $(IMG)|' | $(KUBECTL) apply --server-side -f -

.PHONY: undeploy
undeploy: $(KUSTOMIZE) ## Undeploy controller from the K8s cluster. Call with ignore-not-found=true to ignore resource not found errors during deletion.
	$(KUSTOMIZE) build config/default | $(KUBECTL) delete --ignore-not-found=$(ignore-not-found) -f -

.PHONY: dev
dev: manifests ## Run a local kube-apiserver + etcd, the vendor simulator and the operator with a Qrvey demo (no cluster needed).
	@assets="$$(bash hack/envtest-assets.sh)"; KUBEBUILDER_ASSETS="$$assets" go run ./cmd/devenv

##@ Local cluster (a real single-node Kubernetes built from source; see hack/local-cluster)

# The cluster's state, logs and kubeconfig live under LOCAL_CLUSTER_DIR.
LOCAL_CLUSTER_DIR ?= /tmp/embed-token-operator-cluster
export LOCAL_CLUSTER_DIR

.PHONY: cluster-up
cluster-up: ## Start the local single-node cluster and the vendor simulator (first run builds the node binaries, ~10 min).
	bash hack/local-cluster up

.PHONY: cluster-deploy
cluster-deploy: manifests ## Build the operator image and deploy it to the local cluster from config/local.
	bash hack/local-cluster deploy

.PHONY: cluster-down
cluster-down: ## Stop the local cluster: containers, processes and mounts it started.
	bash hack/local-cluster down

.PHONY: demo
demo: manifests ## Run it: local cluster, operator, simulator and an app pod printing its mounted token's digest as it refreshes.
	bash hack/demo.sh

.PHONY: test-e2e
test-e2e: manifests ## End-to-end tests on the local cluster (started and deployed to first; left running, stop with cluster-down).
	bash hack/local-cluster up
	bash hack/local-cluster deploy
	go vet -tags e2e ./test/e2e/
	go test -tags e2e ./test/e2e/ -count=1 -timeout 40m -v -ginkgo.v

##@ Ecosystem: installer, Helm chart, API docs, kubectl plugin

$(LOCALBIN):
	mkdir -p $(LOCALBIN)

$(KUSTOMIZE): | $(LOCALBIN)
	$(call go-install-tool,$(KUSTOMIZE),sigs.k8s.io/kustomize/kustomize/v5,$(KUSTOMIZE_VERSION),kustomize)

$(HELM): | $(LOCALBIN)
	$(call go-install-tool,$(HELM),helm.sh/helm/v3/cmd/helm,$(HELM_VERSION),helm)

$(CRD_REF_DOCS): | $(LOCALBIN)
	$(call go-install-tool,$(CRD_REF_DOCS),github.com/elastic/crd-ref-docs,$(CRD_REF_DOCS_VERSION),crd-ref-docs)

$(GOLANGCI_LINT): | $(LOCALBIN)
	$(call go-install-tool,$(GOLANGCI_LINT),github.com/golangci/golangci-lint/v2/cmd/golangci-lint,$(GOLANGCI_LINT_VERSION),golangci-lint)

.PHONY: tools
tools: $(KUSTOMIZE) $(HELM) $(CRD_REF_DOCS) $(GOLANGCI_LINT) ## Build kustomize, helm, crd-ref-docs and golangci-lint from the Go module proxy into bin/ (once).

CHART_DIR ?= dist/chart
# helm built with `go install` assumes Kubernetes v1.20 unless told otherwise.
HELM_KUBE_VERSION ?= v1.37.1

.PHONY: chart-sync
chart-sync: manifests ## Copy CRDs, manager RBAC rules, admission policy, PrometheusRule and Grafana dashboard into the Helm chart's files/.
	mkdir -p $(CHART_DIR)/files/crds $(CHART_DIR)/files/rbac $(CHART_DIR)/files/admission $(CHART_DIR)/files/prometheus
	rm -f $(CHART_DIR)/files/crds/*.yaml
	cp config/crd/bases/*.yaml $(CHART_DIR)/files/crds/
	rm -f $(CHART_DIR)/files/rbac/*.yaml
	cp config/rbac/role.yaml config/rbac/*_editor_role.yaml config/rbac/*_viewer_role.yaml $(CHART_DIR)/files/rbac/
	rm -f $(CHART_DIR)/files/admission/*.yaml
	cp config/admission/manager_guardrails_policy.yaml $(CHART_DIR)/files/admission/
	cp config/prometheus/prometheusrule.yaml config/prometheus/grafana-dashboard.json $(CHART_DIR)/files/prometheus/

.PHONY: helm-lint
helm-lint: chart-sync $(HELM) ## helm lint and helm template the chart, cluster-wide (default values), namespaced, with monitoring and sharded.
	go vet -tags helm ./test/install/
	$(HELM) lint --strict $(CHART_DIR)
	$(HELM) lint --strict $(CHART_DIR) -f $(CHART_DIR)/ci/namespaced-values.yaml
	$(HELM) lint --strict $(CHART_DIR) -f $(CHART_DIR)/ci/monitoring-values.yaml
	$(HELM) lint --strict $(CHART_DIR) -f $(CHART_DIR)/ci/sharded-values.yaml
	mkdir -p bin/chart
	$(HELM) template eto $(CHART_DIR) --kube-version $(HELM_KUBE_VERSION) --namespace embed-token-operator > bin/chart/default.yaml
	$(HELM) template eto $(CHART_DIR) --kube-version $(HELM_KUBE_VERSION) --namespace team-a -f $(CHART_DIR)/ci/namespaced-values.yaml > bin/chart/namespaced.yaml
	$(HELM) template eto $(CHART_DIR) --kube-version $(HELM_KUBE_VERSION) --namespace monitoring -f $(CHART_DIR)/ci/monitoring-values.yaml > bin/chart/monitoring.yaml
	$(HELM) template eto $(CHART_DIR) --kube-version $(HELM_KUBE_VERSION) --namespace embed-token-operator -f $(CHART_DIR)/ci/sharded-values.yaml > bin/chart/sharded.yaml
	RENDERED_CHART_DIR=$(CURDIR)/bin/chart KUBEBUILDER_ASSETS="$$(bash hack/envtest-assets.sh)" \
	  go test -tags helm ./test/install/ -run 'TestHelmChart' -count=1 -v

.PHONY: docs
docs: $(CRD_REF_DOCS) ## Generate the API reference docs/api.md from the Go types (api/v1alpha1).
	$(CRD_REF_DOCS) --source-path=./api --config=hack/crd-ref-docs/config.yaml \
	  --renderer=markdown --output-path=docs/api.md --log-level=WARN

.PHONY: plugin
plugin: ## Build the kubectl plugin into bin/kubectl-embedtoken (put bin/ on PATH: `kubectl embedtoken status`).
	go build -o bin/kubectl-embedtoken ./cmd/kubectl-embedtoken

# GENERATED lists files that are checked in and must match what the make
# targets above produce.
GENERATED = dist/install.yaml $(CHART_DIR)/files docs/api.md config/crd/bases config/rbac/role.yaml \
	api/v1alpha1/zz_generated.vendors.go internal/vendorsim/zz_generated.vendors.go

.PHONY: check-generated
check-generated: build-installer chart-sync docs ## Regenerate installer, chart files and API docs; fail if any differs from git.
	@if [ -n "$$(git status --porcelain -- $(GENERATED))" ]; then \
	  echo "Generated files are stale; run 'make build-installer chart-sync docs' and commit:"; \
	  git status --porcelain -- $(GENERATED); git --no-pager diff --stat -- $(GENERATED); exit 1; \
	fi

# go-install-tool builds package $(2) at version $(3) into $(1), a
# version-suffixed name, so changing a version rebuilds the tool. $(4) is the
# name `go install` gives the binary.
define go-install-tool
@[ -f "$(1)" ] || { \
set -e; \
echo "Building $(2)@$(3) from the Go module proxy"; \
GOBIN="$(LOCALBIN)" go install $(2)@$(3); \
mv "$(LOCALBIN)/$(4)" "$(1)"; \
}
endef
