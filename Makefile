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
# CONTAINER_TOOL defines the container tool to be used for building images.
CONTAINER_TOOL ?= docker

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
manifests: ## Generate ClusterRole (config/rbac/role.yaml) and CustomResourceDefinitions (config/crd/bases).
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
lint: ## Fail if any Go file is not gofmt-formatted, then run go vet.
	@unformatted="$$(find . -type f -name '*.go' -not -path './.git/*' -not -path './vendor/*' -not -path '*/testdata/*' -exec gofmt -l {} +)"; \
	if [ -n "$$unformatted" ]; then echo "gofmt needed on:"; echo "$$unformatted"; exit 1; fi
	go vet ./...

.PHONY: envtest
envtest: ## Build (first time, ~5 min) or find the cached envtest assets (kube-apiserver, etcd) and print their directory.
	@bash hack/envtest-assets.sh

.PHONY: test
test: manifests generate fmt vet ## Run unit and envtest integration tests (everything except test/e2e).
	@assets="$$(bash hack/envtest-assets.sh)"; \
	pkgs="$$(go list ./... | grep -v /test/e2e)"; \
	echo "KUBEBUILDER_ASSETS=$$assets"; \
	KUBEBUILDER_ASSETS="$$assets" go test $$pkgs -coverprofile cover.out

##@ Build

.PHONY: build
build: manifests generate fmt vet ## Build manager binary into bin/manager.
	go build -o bin/manager ./cmd/

.PHONY: run
run: manifests generate fmt vet ## Run the controller from your host against the cluster of the current kubeconfig.
	go run ./cmd/

# No Docker engine runs on this project's development and CI machines; these
# targets are for users building the image on their own hosts.
.PHONY: docker-build
docker-build: ## Build docker image with the manager.
	$(CONTAINER_TOOL) build -t $(IMG) .

.PHONY: docker-push
docker-push: ## Push docker image with the manager.
	$(CONTAINER_TOOL) push $(IMG)

.PHONY: build-installer
build-installer: manifests ## Generate a single install.yaml (CRDs and deployment, image IMG) in dist/.
	mkdir -p dist
	$(KUBECTL) kustomize config/default | sed 's|image: controller:latest|image: $(IMG)|' > dist/install.yaml

##@ Deployment

ifndef ignore-not-found
  ignore-not-found = false
endif

.PHONY: install
install: manifests ## Install CRDs into the K8s cluster of the current kubeconfig.
	$(KUBECTL) apply -k config/crd

.PHONY: uninstall
uninstall: manifests ## Uninstall CRDs from the K8s cluster. Call with ignore-not-found=true to ignore resource not found errors during deletion.
	$(KUBECTL) delete --ignore-not-found=$(ignore-not-found) -k config/crd

.PHONY: deploy
deploy: manifests ## Deploy controller (image IMG) to the K8s cluster of the current kubeconfig.
	$(KUBECTL) kustomize config/default | sed 's|image: controller:latest|image: $(IMG)|' | $(KUBECTL) apply -f -

.PHONY: undeploy
undeploy: ## Undeploy controller from the K8s cluster. Call with ignore-not-found=true to ignore resource not found errors during deletion.
	$(KUBECTL) delete --ignore-not-found=$(ignore-not-found) -k config/default

.PHONY: dev
dev: manifests ## Run a local kube-apiserver + etcd, the vendor simulator and the operator with a Qrvey demo (no cluster needed).
	@assets="$$(bash hack/envtest-assets.sh)"; KUBEBUILDER_ASSETS="$$assets" go run ./cmd/devenv
