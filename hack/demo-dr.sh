#!/usr/bin/env bash
# make demo-dr: the regional failure drill across two local clusters.
# "prod" runs the sample app and backs it up with Velero to its S3 store;
# "dr" (another region) reads that store through a ReadOnly location, and
# drillbot there runs the catalog's failover-restore drill: it restores
# prod's newest backup into a fresh namespace, checks it against the
# backup's resource list, measures RTO and RPO, and deletes the copy.
# drillbot in dr has no access to prod. Both clusters are kwok-only (no
# root needed); make cluster-down stops them.
set -euo pipefail
: "${PROD_DIR:?}" "${DR_DIR:?}" "${DRILLBOT:?}" "${KUBECTL:?}" "${DRILLBOT_VELERO:?}"
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
prod() { KUBECONFIG="$PROD_DIR/kubeconfig" "$@"; }
dr() { KUBECONFIG="$DR_DIR/kubeconfig" "$@"; }

step "Starting cluster prod (control plane, kwok, versitygw, Velero)"
go run ./hack/localcluster up -node kwok "$PROD_DIR"
step "Starting cluster dr: its own control plane and Velero, on prod's S3 store through a ReadOnly location"
go run ./hack/localcluster up -node kwok -backups-of "$PROD_DIR" "$DR_DIR"

step "prod: the sample app in namespace drill-demo, its RPO marker stamped, a Velero backup"
prod "$KUBECTL" apply -f examples/demo/app.yaml
prod "$KUBECTL" -n drill-demo rollout status deployment/shop-web --timeout=120s
prod "$DRILLBOT" marker --target drill-demo
backup="drill-demo-$(date -u +%Y%m%d%H%M%S)"
prod "$DRILLBOT_VELERO" --namespace velero backup create "$backup" --include-namespaces drill-demo --wait

step "dr: waiting for Velero's backup sync to bring $backup over (it reconciles once a minute)"
for _ in $(seq 120); do
  phase=$(dr "$KUBECTL" -n velero get backups.velero.io "$backup" -o jsonpath='{.status.phase}' 2>/dev/null || true)
  [ "$phase" = Completed ] && break
  sleep 1
done
[ "$phase" = Completed ] || { echo "backup $backup did not reach cluster dr" >&2; exit 1; }
dr "$KUBECTL" -n velero get backupstoragelocations.velero.io default -o custom-columns=NAME:.metadata.name,ACCESS:.spec.accessMode,PHASE:.status.phase
dr "$KUBECTL" -n velero get backups.velero.io

# The catalog drill, with the demo's names: source drill-demo, the DR
# cluster's location "default" (the catalog says shop and production).
drill="$DR_DIR/failover-restore.yaml"
sed -e 's/sourceNamespace: shop$/sourceNamespace: drill-demo/' -e 's/storageLocation: production$/storageLocation: default/' \
  -e 's/namespace: shop-failover-drill$/namespace: drill-demo-failover/' drills/failover-restore.yaml >"$drill"

step "dr: the location opted in (drillbot.io/allow-disaster=true) and drillbot's RBAC (drillbot rbac)"
dr "$KUBECTL" -n velero label backupstoragelocations.velero.io default drillbot.io/allow-disaster=true --overwrite
dr "$KUBECTL" create namespace drillbot-system --dry-run=client -o yaml | dr "$KUBECTL" apply -f - >/dev/null
dr "$KUBECTL" -n drillbot-system create serviceaccount drillbot --dry-run=client -o yaml | dr "$KUBECTL" apply -f - >/dev/null
dr "$DRILLBOT" rbac -f "$drill" | dr "$KUBECTL" apply -f -
for _ in $(seq 30); do
  dr "$KUBECTL" auth can-i create restores.velero.io -n velero --as system:serviceaccount:drillbot-system:drillbot >/dev/null 2>&1 && break
  sleep 1
done

step "dr: drillbot plan (read-only)"
dr "$DRILLBOT" plan -f "$drill" --as drillbot-system:drillbot

step "dr: drillbot run -f failover-restore.yaml --wait"
set +e
dr "$DRILLBOT" run -f "$drill" --wait
code=$?
set -e

step "dr: the copy is gone, the run recorded; prod: untouched, no restore there"
dr "$KUBECTL" get namespaces
dr "$KUBECTL" get drillruns -n drillbot-system
prod "$KUBECTL" -n velero get restores.velero.io

step "dr: the DR status report (drillbot report --output markdown)"
dr "$DRILLBOT" report --drills "$drill" --output markdown

cat <<MSG

Both clusters are still running, for a closer look:
  export KUBECONFIG=$DR_DIR/kubeconfig     # or $PROD_DIR/kubeconfig
  $KUBECTL describe drillrun -n drillbot-system
Stop them with: make cluster-down
MSG
exit $code
