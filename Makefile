# drillbot Makefile. The two commands a user needs: `make demo` and `make test`.

SHELL := /usr/bin/env bash
GO ?= go

# Versions of the local cluster's components (see ../shared/local-cluster-notes.md).
KUBE_VERSION        ?= v1.34.4
ETCD_VERSION        ?= v3.6.5
KWOK_VERSION        ?= v0.7.0
VERSITYGW_VERSION   ?= v1.8.0
VELERO_VERSION      ?= v1.18.3
LOCAL_PATH_VERSION  ?= v0.0.30
VELERO_AWS_VERSION  ?= v1.14.3
HELM_VERSION        ?= v3.21.4
KUBE_SCORE_VERSION  ?= v1.20.0
PROMTOOL_VERSION    ?= v0.316.0
# The monitoring the local cluster runs for detection and stop-condition tests:
# Prometheus from the same module as promtool, and Alertmanager.
ALERTMANAGER_VERSION ?= v0.35.0
# The security stack the real node runs.
KYVERNO_VERSION     ?= v1.19.1
ESO_VERSION         ?= v0.16.2
KUBE_ROUTER_VERSION ?= v2.1.0
COSIGN_VERSION      ?= v3.1.2
# Calico v3.31.0: its module path has no /v3, so the proxy serves the
# release commit as a pseudo-version (hack/tools/calico/go.mod).
CALICO_VERSION      ?= v3.31.0

# Built binaries are cached under bin/, one folder per component and version,
# so a version bump rebuilds and an unchanged one is reused.
BIN := $(CURDIR)/bin
KUBE_APISERVER := $(BIN)/kube-$(KUBE_VERSION)/kube-apiserver
KUBE_CM        := $(BIN)/kube-$(KUBE_VERSION)/kube-controller-manager
KUBE_SCHEDULER := $(BIN)/kube-$(KUBE_VERSION)/kube-scheduler
KUBECTL        := $(BIN)/kube-$(KUBE_VERSION)/kubectl
KUBELET        := $(BIN)/kube-$(KUBE_VERSION)/kubelet
KUBE_PROXY     := $(BIN)/kube-$(KUBE_VERSION)/kube-proxy
ETCD           := $(BIN)/etcd-$(ETCD_VERSION)/etcd
KWOK           := $(BIN)/kwok-$(KWOK_VERSION)/kwok
VERSITYGW      := $(BIN)/versitygw-$(VERSITYGW_VERSION)/versitygw
# Velero is built static (no cgo): the same binary runs the server on this
# machine and, in an image FROM scratch, the node-agent on the real node.
VELERO         := $(BIN)/velero-$(VELERO_VERSION)-static/velero
VELERO_RESTORE_HELPER := $(BIN)/velero-$(VELERO_VERSION)-static/velero-restore-helper
LOCAL_PATH     := $(BIN)/local-path-provisioner-$(LOCAL_PATH_VERSION)/local-path-provisioner
VELERO_AWS     := $(BIN)/velero-plugin-for-aws-$(VELERO_AWS_VERSION)/velero-plugin-for-aws
HELM           := $(BIN)/helm-$(HELM_VERSION)/helm
KUBE_SCORE     := $(BIN)/kube-score-$(KUBE_SCORE_VERSION)/kube-score
PROMTOOL       := $(BIN)/promtool-$(PROMTOOL_VERSION)/promtool
PROMETHEUS     := $(BIN)/prometheus-$(PROMTOOL_VERSION)/prometheus
ALERTMANAGER   := $(BIN)/alertmanager-$(ALERTMANAGER_VERSION)/alertmanager
KYVERNO        := $(BIN)/kyverno-$(KYVERNO_VERSION)/kyverno
KYVERNO_INIT   := $(BIN)/kyverno-$(KYVERNO_VERSION)/kyverno-init
ESO            := $(BIN)/external-secrets-$(ESO_VERSION)/external-secrets
KUBE_ROUTER    := $(BIN)/kube-router-$(KUBE_ROUTER_VERSION)/kube-router
COSIGN         := $(BIN)/cosign-$(COSIGN_VERSION)/cosign
# calico-node (Felix, policy only), Calico's CNI plugin, and Calico's own
# policy-only manifest the local cluster installs from.
CALICO_NODE    := $(BIN)/calico-$(CALICO_VERSION)/calico-node
CALICO_CNI     := $(BIN)/calico-$(CALICO_VERSION)/calico
CALICO_MANIFEST := $(BIN)/calico-$(CALICO_VERSION)/calico-policy-only.yaml
# The charts the stack is installed from, copied from the modules built.
KYVERNO_CHART  := $(BIN)/kyverno-$(KYVERNO_VERSION)/chart
ESO_CHART      := $(BIN)/external-secrets-$(ESO_VERSION)/chart
DRILLBOT       := $(BIN)/drillbot
# kind (test/kindcluster): kubeadm from the same tools module, the OCI
# runtime wrapper for --privileged nodes on this machine, the control
# plane's images named as kubeadm expects, and the node image itself.
KUBEADM        := $(BIN)/kube-$(KUBE_VERSION)/kubeadm
KIND_RUNTIME   := $(BIN)/kindruntime
KIND_IMAGES     = $(IMAGES)/kind-$(KUBE_VERSION)
KIND_NODE      := $(BIN)/kind-node-$(KUBE_VERSION)/node.tar
KIND_NODE_REF  := drillbot.local/kind-node:$(KUBE_VERSION)
# make demo CLUSTER=kind: KIND_NODE_IMAGE=local (the harness's Docker and
# the node image above; needs root), kind (your Docker and kind's own node
# image), or an image reference in your Docker.
CLUSTER         ?= local
KIND_NODE_IMAGE ?= local
KIND_DIR        ?= $(CURDIR)/tmp/kind

CLUSTER_BINS := $(ETCD) $(KUBE_APISERVER) $(KUBE_CM) $(KUBE_SCHEDULER) $(KUBECTL) $(KUBELET) $(KUBE_PROXY) $(KWOK) $(VERSITYGW) $(VELERO) $(VELERO_AWS) $(KUBE_ROUTER)
# The real security stack: Kyverno and ESO run as pods from their own charts
# (static binaries, so hack/image puts them in FROM-scratch images), kube-router enforces
# NetworkPolicy on the node, cosign signs the registry's test image.
STACK_BINS := $(KYVERNO) $(KYVERNO_INIT) $(ESO) $(COSIGN) $(KYVERNO_CHART) $(ESO_CHART)
# The images the real node runs (hack/image: FROM scratch, no Docker).
IMAGES := $(BIN)/images

# The local cluster reads where its binaries are from these variables.
export DRILLBOT_ETCD := $(ETCD)
export DRILLBOT_KUBE_APISERVER := $(KUBE_APISERVER)
export DRILLBOT_KUBE_CONTROLLER_MANAGER := $(KUBE_CM)
export DRILLBOT_KUBE_SCHEDULER := $(KUBE_SCHEDULER)
export DRILLBOT_KWOK := $(KWOK)
export DRILLBOT_VERSITYGW := $(VERSITYGW)
export DRILLBOT_VELERO := $(VELERO)
export DRILLBOT_VELERO_PLUGIN_DIR := $(dir $(VELERO_AWS))
export DRILLBOT_HELM := $(HELM)
export DRILLBOT_KUBE_SCORE := $(KUBE_SCORE)
export DRILLBOT_PROMTOOL := $(PROMTOOL)
export DRILLBOT_PROMETHEUS := $(PROMETHEUS)
export DRILLBOT_ALERTMANAGER := $(ALERTMANAGER)
export DRILLBOT_KUBELET := $(KUBELET)
export DRILLBOT_KUBE_PROXY := $(KUBE_PROXY)
export DRILLBOT_IMAGES := $(IMAGES)
export DRILLBOT_KUBE_ROUTER := $(KUBE_ROUTER)
export DRILLBOT_CALICO_CNI := $(CALICO_CNI)
export DRILLBOT_CALICO_MANIFEST := $(CALICO_MANIFEST)
export DRILLBOT_COSIGN := $(COSIGN)
export DRILLBOT_KYVERNO_CHART := $(KYVERNO_CHART)
export DRILLBOT_ESO_CHART := $(ESO_CHART)
export DRILLBOT_KIND_NODE := $(KIND_NODE)
export DRILLBOT_KIND_NODE_REF := $(KIND_NODE_REF)
export DRILLBOT_KIND_RUNTIME := $(KIND_RUNTIME)
export DRILLBOT_KIND_IMAGES = $(KIND_IMAGES)

# Each component's build prints one line when it starts and one when it is
# done (name, version, time, log); its full output goes to bin/logs/.
LOGS := $(BIN)/logs
step = @$(CURDIR)/hack/step.sh $(1) $(2) $(LOGS)/$(1)-$(2).log --

CLUSTER_DIR ?= $(CURDIR)/tmp/cluster
# make demo-dr's two clusters.
PROD_DIR ?= $(CURDIR)/tmp/cluster-prod
DR_DIR ?= $(CURDIR)/tmp/cluster-dr
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/drillbot-io/drillbot/internal/version.Version=$(VERSION)

.PHONY: kind-node kind-deps kind-stack-images announce monitoring stack-bins stack-images velero-images calico-images all build chart image images node-deps test test-unit test-integration demo demo-dr bench cluster-bins cluster-up cluster-down vet fmt clean

all: build

build: $(DRILLBOT)

# bin/kubectl-drillbot is the same binary as a kubectl plugin: with bin/
# on the PATH, kubectl drillbot plan ... works.
$(DRILLBOT): FORCE
	$(GO) build -ldflags '$(LDFLAGS)' -o $@ ./cmd/drillbot
	@ln -sf drillbot $(BIN)/kubectl-drillbot

FORCE:

# The chart's generated parts: RBAC from the scenarios' declared
# permissions, and the CRD drillbot embeds.
chart:
	$(GO) run ./cmd/drillbot rbac --helm -f drills > deploy/helm/drillbot/templates/rbac.yaml
	cp internal/api/v1alpha1/crd/drillbot.io_drillruns.yaml deploy/helm/drillbot/crds/

# The drill format reference, generated from the Go types (a test in
# hack/docgen fails when the committed file is stale).
.PHONY: docs
docs:
	$(GO) run ./hack/docgen > docs/drill-format.md.tmp && mv docs/drill-format.md.tmp docs/drill-format.md

cluster-bins: announce $(CLUSTER_BINS)

# Said once before the components are checked: a cold first build is long.
announce:
	@echo "local cluster components, cached in bin/ by version (a first build from the Go module proxy takes about 50 min on 2 cores; logs in bin/logs/):"

# The version stamp makes the binaries report v1.34.x instead of v0.0.0-master.
KUBE_LDFLAGS := -X k8s.io/component-base/version.gitVersion=$(KUBE_VERSION) \
	-X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(word 2,$(subst ., ,$(KUBE_VERSION))) \
	-X k8s.io/client-go/pkg/version.gitVersion=$(KUBE_VERSION)
$(KUBE_APISERVER) $(KUBE_CM) $(KUBE_SCHEDULER) $(KUBECTL) $(KUBELET) $(KUBE_PROXY) $(KUBEADM): hack/tools/kube/go.mod
	$(call step,$(notdir $@),$(KUBE_VERSION)) bash -c "cd hack/tools/kube && $(GO) build -ldflags '$(KUBE_LDFLAGS)' -o $@ k8s.io/kubernetes/cmd/$(notdir $@)"

$(ETCD): hack/tools/etcd/go.mod hack/tools/etcd/main.go
	$(call step,etcd,$(ETCD_VERSION)) bash -c "cd hack/tools/etcd && $(GO) build -o $@ ."

$(KWOK):
	$(call step,kwok,$(KWOK_VERSION)) env GOBIN=$(dir $@) $(GO) install sigs.k8s.io/kwok/cmd/kwok@$(KWOK_VERSION)

$(VERSITYGW):
	$(call step,versitygw,$(VERSITYGW_VERSION)) env GOBIN=$(dir $@) $(GO) install github.com/versity/versitygw/cmd/versitygw@$(VERSITYGW_VERSION)

$(VELERO): hack/tools/velero/go.mod hack/tools/velero/main.go
	$(call step,velero,$(VELERO_VERSION)) bash -c "cd hack/tools/velero && CGO_ENABLED=0 $(GO) build -o $@ ."

# The init container Velero adds to a pod it restores with volume data.
$(VELERO_RESTORE_HELPER): hack/tools/velero/go.mod
	$(call step,velero-restore-helper,$(VELERO_VERSION)) bash -c "cd hack/tools/velero && CGO_ENABLED=0 $(GO) build -ldflags '-s -w' -o $@ github.com/vmware-tanzu/velero/cmd/velero-restore-helper"

$(HELM):
	$(call step,helm,$(HELM_VERSION)) env GOBIN=$(dir $@) $(GO) install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)

# promtool: the chart's alerts are checked and unit-tested in make test.
$(PROMTOOL):
	$(call step,promtool,$(PROMTOOL_VERSION)) env GOBIN=$(dir $@) $(GO) install github.com/prometheus/prometheus/cmd/promtool@$(PROMTOOL_VERSION)

# Prometheus and Alertmanager: the local cluster's monitoring (see
# test/localcluster/prometheus.go). Alertmanager's module ships without
# its built web UI (ui/app/dist is generated by npm and Elm), which it embeds:
# the source is copied and a one-page placeholder stands in; the API is whole.
$(PROMETHEUS):
	$(call step,prometheus,$(PROMTOOL_VERSION)) env GOBIN=$(dir $@) $(GO) install github.com/prometheus/prometheus/cmd/prometheus@$(PROMTOOL_VERSION)

$(ALERTMANAGER):
	$(call step,alertmanager,$(ALERTMANAGER_VERSION)) bash -c 'set -e; src=$(dir $@)src; rm -rf "$$src"; mkdir -p $(dir $@); \
	  $(GO) mod download github.com/prometheus/alertmanager@$(ALERTMANAGER_VERSION); \
	  cp -r "$$($(GO) mod download -json github.com/prometheus/alertmanager@$(ALERTMANAGER_VERSION) | sed -n "s/.*\"Dir\": \"\(.*\)\",/\1/p")" "$$src"; \
	  chmod -R u+w "$$src"; mkdir -p "$$src/ui/app/dist/elm" "$$src/ui/app/dist/mantine"; \
	  for d in elm mantine; do echo "<!doctype html><title>Alertmanager</title><p>UI not built here: use the API v2." > "$$src/ui/app/dist/$$d/index.html"; done; \
	  cd "$$src" && CGO_ENABLED=0 $(GO) build -o $@ ./cmd/alertmanager && rm -rf "$$src"'

monitoring: $(PROMETHEUS) $(ALERTMANAGER)

# kube-score: the chart's rendered manifests are linted in make test.
$(KUBE_SCORE):
	$(call step,kube-score,$(KUBE_SCORE_VERSION)) env GOBIN=$(dir $@) $(GO) install github.com/zegl/kube-score/cmd/kube-score@$(KUBE_SCORE_VERSION)

$(KYVERNO) $(KYVERNO_INIT): hack/tools/kyverno/go.mod
	$(call step,$(notdir $@),$(KYVERNO_VERSION)) bash -c "cd hack/tools/kyverno && CGO_ENABLED=0 $(GO) build -ldflags '-s -w' -o $@ github.com/kyverno/kyverno/cmd/$(notdir $@)"

$(ESO): hack/tools/eso/go.mod
	$(call step,external-secrets,$(ESO_VERSION)) bash -c "cd hack/tools/eso && CGO_ENABLED=0 $(GO) build -ldflags '-s -w' -o $@ github.com/external-secrets/external-secrets"

# A chart's subcharts from chart repositories are not here: the ones these
# installs disable are dropped from its Chart.yaml (DROP_DEPS), Kyverno's
# CRD subchart comes from its API module, ESO's CRDs from its bundle.
DROP_DEPS = awk '/^  - name: ($(1))$$/{skip=1;next} /^  - name:/{skip=0} !skip' $(2)/Chart.yaml > $(2)/Chart.yaml.new && \
	mv $(2)/Chart.yaml.new $(2)/Chart.yaml && rm -f $(2)/Chart.lock
$(KYVERNO_CHART): hack/tools/kyverno/go.mod
	@echo "  copying  kyverno chart            $(KYVERNO_VERSION)   to $@"
	@rm -rf $@ && mkdir -p $(dir $@) && cd hack/tools/kyverno && \
	  cp -r "$$($(GO) list -m -f '{{.Dir}}' github.com/kyverno/kyverno)/charts/kyverno" $@ && chmod -R u+w $@ && \
	  cp -r "$$($(GO) list -m -f '{{.Dir}}' github.com/kyverno/api)/charts/kyverno-api" $@/charts/ && chmod -R u+w $@
	@$(call DROP_DEPS,openreports|reports-server,$@)

$(ESO_CHART): hack/tools/eso/go.mod
	@echo "  copying  external-secrets chart   $(ESO_VERSION)   to $@"
	@rm -rf $@ && mkdir -p $(dir $@) && cd hack/tools/eso && dir="$$($(GO) list -m -f '{{.Dir}}' github.com/external-secrets/external-secrets)" && \
	  cp -r "$$dir/deploy/charts/external-secrets" $@ && chmod -R u+w $@ && \
	  mkdir -p $@/crds && cp "$$dir/deploy/crds/bundle.yaml" $@/crds/ && chmod -R u+w $@
	@$(call DROP_DEPS,bitwarden-sdk-server,$@)

# Their images, beside the real node's others in bin/images.
stack-images: $(STACK_BINS)
	$(call step,stack-images,$(KYVERNO_VERSION)) $(GO) run ./hack/image -out $(IMAGES) -bin kyverno=$(KYVERNO) -bin kyvernopre=$(KYVERNO_INIT) -bin external-secrets=$(ESO) \
	  kyverno kyvernopre external-secrets

# Velero's node-agent and restore helper images, for real volume data on
# the real node (the demo and test/realstorage).
velero-images: $(IMAGES)/velero-$(VELERO_VERSION).stamp
# with the real node's dynamic provisioner (rancher/local-path-provisioner,
# static, FROM scratch) and its helper (hack/images/volumehelper)
$(IMAGES)/velero-$(VELERO_VERSION).stamp: $(VELERO) $(VELERO_RESTORE_HELPER) $(LOCAL_PATH)
	$(call step,velero-images,$(VELERO_VERSION)) $(GO) run ./hack/image -out $(IMAGES) \
	  -bin velero=$(VELERO) -bin velero-restore-helper=$(VELERO_RESTORE_HELPER) -bin local-path-provisioner=$(LOCAL_PATH) \
	  velero velero-restore-helper local-path-provisioner && touch $@

$(LOCAL_PATH): hack/tools/localpath/go.mod
	$(call step,local-path-provisioner,$(LOCAL_PATH_VERSION)) bash -c "cd hack/tools/localpath && CGO_ENABLED=0 $(GO) build -o $@ github.com/rancher/local-path-provisioner"

# Calico, for the real node's NetworkPolicy under Calico (test/realcalico):
# its two commands in one build, its manifest from the same module, and the
# calico-node image (with Debian's iptables, ipset and conntrack, which
# Felix runs) beside the others.
$(CALICO_NODE) $(CALICO_CNI) &: hack/tools/calico/go.mod
	$(call step,calico,$(CALICO_VERSION)) bash -c "cd hack/tools/calico && CGO_ENABLED=0 $(GO) build -ldflags '-s -w' -o $(dir $(CALICO_NODE)) \
	  github.com/projectcalico/calico/node/cmd/calico-node github.com/projectcalico/calico/cni-plugin/cmd/calico"

$(CALICO_MANIFEST): hack/tools/calico/go.mod
	@mkdir -p $(dir $@) && cd hack/tools/calico && cp "$$($(GO) list -m -f '{{.Dir}}' github.com/projectcalico/calico)/manifests/calico-policy-only.yaml" $@ && chmod u+w $@

calico-images: $(IMAGES)/calico-$(CALICO_VERSION).stamp $(CALICO_CNI) $(CALICO_MANIFEST)
$(IMAGES)/calico-$(CALICO_VERSION).stamp: $(CALICO_NODE)
	$(call step,calico-images,$(CALICO_VERSION)) $(GO) run ./hack/image -out $(IMAGES) -bin calico-node=$(CALICO_NODE) calico-node && touch $@

$(KUBE_ROUTER):
	$(call step,kube-router,$(KUBE_ROUTER_VERSION)) env GOBIN=$(dir $@) $(GO) install github.com/cloudnativelabs/kube-router/v2/cmd/kube-router@$(KUBE_ROUTER_VERSION)

$(COSIGN):
	$(call step,cosign,$(COSIGN_VERSION)) env GOBIN=$(dir $@) $(GO) install github.com/sigstore/cosign/v3/cmd/cosign@$(COSIGN_VERSION)

stack-bins: $(STACK_BINS)

$(VELERO_AWS): hack/tools/veleroaws/go.mod
	$(call step,velero-plugin-for-aws,$(VELERO_AWS_VERSION)) bash -c "cd hack/tools/veleroaws && $(GO) build -o $@ github.com/vmware-tanzu/velero-plugin-for-aws/velero-plugin-for-aws"

# drillbot's container image without Docker (the Dockerfile's equivalent):
# a static binary FROM scratch, user 65532, as a tarball for `docker load`
# or `ctr images import`. `images` adds the real node's pause and sample app.
image:
	$(GO) run ./hack/image -out $(IMAGES) -version $(VERSION) drillbot

images:
	$(call step,images,$(VERSION)) $(GO) run ./hack/image -out $(IMAGES) -version $(VERSION)

# kind on this machine (no registry): the runtime wrapper (static: it also
# runs inside the node), the control plane's images (the binaries the local
# cluster runs, with their libraries, under kubeadm's names for this
# version), and the node image (hack/kindnode: debootstrap, needs root and
# the Debian mirror), each cached in bin/ until its inputs change.
$(KIND_RUNTIME): hack/kindruntime/main.go
	CGO_ENABLED=0 $(GO) build -o $@ ./hack/kindruntime

KIND_IMAGE_REFS := -ref kube-apiserver=registry.k8s.io/kube-apiserver:$(KUBE_VERSION) \
	-ref kube-controller-manager=registry.k8s.io/kube-controller-manager:$(KUBE_VERSION) \
	-ref kube-scheduler=registry.k8s.io/kube-scheduler:$(KUBE_VERSION) \
	-ref kube-proxy=registry.k8s.io/kube-proxy:$(KUBE_VERSION) \
	-ref etcd=registry.k8s.io/etcd:$(ETCD_VERSION:v%=%)-0 \
	-ref pause=registry.k8s.io/pause:3.10.1
$(KIND_IMAGES)/images.stamp: $(KUBE_APISERVER) $(KUBE_CM) $(KUBE_SCHEDULER) $(KUBE_PROXY) $(ETCD) hack/image/main.go hack/images/pause/main.go
	$(call step,kind-images,$(KUBE_VERSION)) $(GO) run ./hack/image -out $(KIND_IMAGES) $(KIND_IMAGE_REFS) \
	  -bin kube-apiserver=$(KUBE_APISERVER) -bin kube-controller-manager=$(KUBE_CM) -bin kube-scheduler=$(KUBE_SCHEDULER) \
	  -bin kube-proxy=$(KUBE_PROXY) -bin etcd=$(ETCD) kube-apiserver kube-controller-manager kube-scheduler kube-proxy etcd pause && touch $@

# Velero's server with the AWS plugin beside it, and the S3 store, as pods.
kind-stack-images: $(KIND_IMAGES)/stack.stamp
$(KIND_IMAGES)/stack.stamp: $(VELERO) $(VELERO_AWS) $(VERSITYGW) hack/image/main.go
	$(call step,kind-stack-images,$(VELERO_VERSION)) $(GO) run ./hack/image -out $(KIND_IMAGES) \
	  -bin velero-server=$(VELERO) -bin velero-plugin-for-aws=$(VELERO_AWS) -bin versitygw=$(VERSITYGW) velero-server versitygw && touch $@

$(KIND_NODE): $(KIND_IMAGES)/images.stamp $(KUBELET) $(KUBEADM) $(KUBECTL) $(KIND_RUNTIME) $(filter-out %_test.go,$(wildcard hack/kindnode/*.go)) | kind-deps
	$(call step,kind-node,$(KUBE_VERSION)) $(GO) run ./hack/kindnode -out $@ -ref $(KIND_NODE_REF) -kube-version $(KUBE_VERSION) \
	  -kubelet $(KUBELET) -kubeadm $(KUBEADM) -kubectl $(KUBECTL) -runtime $(KIND_RUNTIME) \
	  $(foreach i,kube-apiserver kube-controller-manager kube-scheduler kube-proxy etcd pause,-image $(KIND_IMAGES)/$(i).tar)
kind-node: $(KIND_NODE)

# Docker (Debian's docker.io, run by the harness as a plain process with
# iptables and masquerade off) and debootstrap, installed when missing.
# policy-rc.d keeps the package from starting a daemon of its own.
kind-deps:
	@missing=""; for t in dockerd debootstrap; do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing kind's Docker and debootstrap (missing:$$missing)"; \
	  created=""; if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && created=1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io debootstrap >/dev/null; \
	  rc=$$?; if [ -n "$$created" ]; then rm -f /usr/sbin/policy-rc.d; fi; exit $$rc; \
	fi

# The real node's runtime, from Debian: containerd, runc, the CNI plugins,
# iptables and conntrack. Installed when missing (needs root and apt).
# chromium: the HTML report's test loads the page in a real headless browser;
# curl: test/realcalico probes from inside pods.
NODE_TOOLS := containerd containerd-shim-runc-v2 ctr runc iptables ip6tables conntrack ipset chromium curl
node-deps:
	@missing=""; for t in $(NODE_TOOLS); do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	for p in bridge host-local loopback portmap; do test -x /usr/lib/cni/$$p || missing="$$missing cni/$$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing the real node's runtime (missing:$$missing)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    containerd runc containernetworking-plugins iptables conntrack ipset chromium curl >/dev/null; \
	fi

# Unit and integration tests. Integration tests start their own local cluster
# (one per package) and fail, rather than skip, when it cannot start.
test: announce $(CLUSTER_BINS) $(HELM) $(KUBE_SCORE) $(PROMTOOL) $(PROMETHEUS) $(ALERTMANAGER) images stack-images velero-images calico-images node-deps kind-deps $(KIND_NODE) kind-stack-images
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	DRILLBOT_REQUIRE_CLUSTER=1 $(GO) test -count=1 -timeout 45m $(TEST_ARGS) ./...
	@echo "the network drills again, with Calico enforcing NetworkPolicy on the real node"
	DRILLBOT_REQUIRE_CLUSTER=1 DRILLBOT_ENFORCER=calico $(GO) test -count=1 -timeout 20m -run 'TestBlockKeyVault$$|TestRekorOutage$$' ./test/realstack/

# The main job: a local cluster, a real drill, a report. CLUSTER=kind: the
# same drill on a kind cluster, run by drillbot installed from its chart.
ifeq ($(CLUSTER),kind)
demo: $(DRILLBOT) $(HELM) images kind-stack-images $(if $(filter local,$(KIND_NODE_IMAGE)),kind-deps $(KIND_NODE))
	DRILLBOT=$(DRILLBOT) $(GO) run ./hack/kindcluster demo -node-image $(KIND_NODE_IMAGE) $(KIND_DIR)
else
demo: announce $(CLUSTER_BINS) $(DRILLBOT) images velero-images node-deps
	CLUSTER_DIR=$(CLUSTER_DIR) DRILLBOT=$(DRILLBOT) KUBECTL=$(KUBECTL) ./hack/demo.sh
endif

# The regional failure drill across two kwok-only clusters (no root).
demo-dr: announce $(CLUSTER_BINS) $(DRILLBOT)
	PROD_DIR=$(PROD_DIR) DR_DIR=$(DR_DIR) DRILLBOT=$(DRILLBOT) KUBECTL=$(KUBECTL) ./hack/demo-dr.sh

# Benchmarks on a fresh local cluster: RTO precision, idle footprint,
# inventory scale, drill overhead. Prints a table; writes bench/results/.
BENCH_ARGS ?=
bench: $(CLUSTER_BINS) $(DRILLBOT) images velero-images node-deps
	$(GO) run ./hack/bench -drillbot $(DRILLBOT) -out bench/results $(BENCH_ARGS)

test-unit:
	$(GO) test -count=1 -short ./...

# NODE=real (default): one real node (kubelet, containerd, kube-proxy; needs
# root); NODE=kwok: fake nodes only, pods never run.
NODE ?= real
# CLUSTER_UP_ARGS=-calico: Calico enforces NetworkPolicy instead of kube-router.
cluster-up: announce $(CLUSTER_BINS) images $(if $(findstring -calico,$(CLUSTER_UP_ARGS)),calico-images) node-deps
	$(GO) run ./hack/localcluster up -node $(NODE) $(CLUSTER_UP_ARGS) $(CLUSTER_DIR)

cluster-down:
	$(GO) run ./hack/localcluster down $(CLUSTER_DIR)
	$(GO) run ./hack/localcluster down $(PROD_DIR)
	$(GO) run ./hack/localcluster down $(DR_DIR)
	$(GO) run ./hack/kindcluster down $(KIND_DIR)
