#!/usr/bin/env bash
# make demo: start the local cluster, deploy a sample app into an opted-in
# namespace, back it up with Velero the way a nightly Schedule would, run the
# namespace-restore drill from the shipped catalog, and print its report.
set -euo pipefail
: "${CLUSTER_DIR:?}" "${DRILLBOT:?}" "${KUBECTL:?}" "${DRILLBOT_VELERO:?}"
export KUBECONFIG="$CLUSTER_DIR/kubeconfig"
velero() { "$DRILLBOT_VELERO" --namespace velero "$@"; }
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "Starting the local cluster (etcd, kube-apiserver, controller-manager, scheduler, kwok, versitygw, Velero)"
go run ./hack/localcluster up "$CLUSTER_DIR"

step "Deploying the sample app into namespace drill-demo (labelled drillbot.io/allow-disaster=true)"
"$KUBECTL" apply -f examples/demo/app.yaml
"$KUBECTL" -n drill-demo rollout status deployment/shop-web --timeout=120s
"$KUBECTL" -n drill-demo rollout status statefulset/shop-cache --timeout=120s

step "Stamping the RPO marker, then backing up with the Velero Schedule drill-demo-daily"
"$DRILLBOT" marker --target drill-demo
velero schedule create drill-demo-daily --schedule "0 2 * * *" --include-namespaces drill-demo >/dev/null
velero backup create --from-schedule drill-demo-daily --wait
# Time passes between the last backup and the disaster: that gap is the data
# at risk, and the drill's RPO measures it from the restored marker.
sleep "${DEMO_GAP_SECONDS:-5}"

step "Running the drill: drillbot run -f drills/namespace-restore.yaml --wait"
set +e
"$DRILLBOT" run -f drills/namespace-restore.yaml --wait --log-level warn
code=$?
set -e

step "The result is recorded in the cluster"
"$KUBECTL" get drillruns -n drillbot-system
"$KUBECTL" -n drill-demo get deployments,statefulsets,pods

cat <<MSG

The local cluster is still running, for a closer look:
  export KUBECONFIG=$KUBECONFIG
  $KUBECTL get drillruns -n drillbot-system -o yaml
Stop it with: make cluster-down
MSG
exit $code
