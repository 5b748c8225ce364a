#!/usr/bin/env bash
# make demo: start the local cluster, deploy a sample app into an opted-in
# namespace, back it up with Velero the way a nightly Schedule would, run the
# namespace-restore drill from the shipped catalog and the posture checks,
# and print the report.
set -euo pipefail
: "${CLUSTER_DIR:?}" "${DRILLBOT:?}" "${KUBECTL:?}" "${DRILLBOT_VELERO:?}"
export KUBECONFIG="$CLUSTER_DIR/kubeconfig"
velero() { "$DRILLBOT_VELERO" --namespace velero "$@"; }
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "Starting the local cluster (etcd, kube-apiserver, controller-manager, scheduler, a real node: kubelet + containerd + kube-proxy, versitygw, Velero and its node-agent, a dynamic volume provisioner: rancher/local-path-provisioner)"
go run ./hack/localcluster up -node-agent "$CLUSTER_DIR"

step "Deploying the sample app into namespace drill-demo (labelled drillbot.io/allow-disaster=true)"
"$KUBECTL" apply -f examples/demo/app.yaml
"$KUBECTL" -n drill-demo rollout status deployment/shop-web --timeout=120s
"$KUBECTL" -n drill-demo rollout status statefulset/shop-orders --timeout=120s

# The catalog's drill, with the app's own data checks: after the restore, a
# Job reads both replicas' restored records (the chain intact; the first
# replica's newest record before the disaster: the RPO measured from the
# data; every restored volume must be read, or the run is INCONCLUSIVE), and
# the replica itself is asked over HTTP (through the API server's service
# proxy) what it holds as of the backup's start, which must be what it
# answered before the disaster.
drill="$CLUSTER_DIR/namespace-restore.yaml"
cp drills/namespace-restore.yaml "$drill"
cat >>"$drill" <<'YAML'
  verify:
    job:
      template:
        spec:
          securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
          containers:
          - name: check
            image: drillbot.local/sampleapp:dev
            imagePullPolicy: Never
            args: [check, /data/records]
            securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
            volumeMounts: [{name: data, mountPath: /data, readOnly: true}]
          - name: check-1
            image: drillbot.local/sampleapp:dev
            imagePullPolicy: Never
            args: [check, /data/records]
            securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
            volumeMounts: [{name: data-1, mountPath: /data, readOnly: true}]
          volumes:
          - name: data
            persistentVolumeClaim: {claimName: data-shop-orders-0, readOnly: true}
          - name: data-1
            persistentVolumeClaim: {claimName: data-shop-orders-1, readOnly: true}
    http: {service: shop-orders-0, port: http, path: /newest}
YAML

step "drillbot's service account, with the RBAC drillbot derives for the drill (drillbot rbac), as the Helm chart installs it"
# Before the backup: the drill's Role in drill-demo (creating the RPO
# marker) is deleted with the namespace, and only a backup that holds it
# brings it back (drillbot plan finds it missing otherwise).
"$KUBECTL" create namespace drillbot-system --dry-run=client -o yaml | "$KUBECTL" apply -f - >/dev/null
"$KUBECTL" -n drillbot-system create serviceaccount drillbot --dry-run=client -o yaml | "$KUBECTL" apply -f - >/dev/null
"$DRILLBOT" rbac -f "$drill" | "$KUBECTL" apply -f -
for _ in $(seq 30); do # the authorizer applies new bindings after a moment
  "$KUBECTL" auth can-i delete namespaces/drill-demo --as system:serviceaccount:drillbot-system:drillbot >/dev/null 2>&1 && break
  sleep 1
done

step "Stamping the RPO marker, then backing up with the Velero Schedule drill-demo-daily"
"$DRILLBOT" marker --target drill-demo
velero schedule create drill-demo-daily --schedule "0 2 * * *" --include-namespaces drill-demo >/dev/null
velero backup create --from-schedule drill-demo-daily --wait
# Time passes between the last backup and the disaster: that gap is the data
# at risk, and the drill's RPO measures it from the restored marker.
sleep "${DEMO_GAP_SECONDS:-5}"

step "Before it runs: drillbot plan -f namespace-restore.yaml (the catalog's drill and a data check; read-only: calls, what the fault hits, preflight, permissions)"
# plan asks the API server whether drillbot's service account may make
# every call of the drill.
"$DRILLBOT" plan -f "$drill" --as drillbot-system:drillbot

step "Running the drill: drillbot run -f namespace-restore.yaml --wait"
set +e
"$DRILLBOT" run -f "$drill" --wait
code=$?
set -e

# After the drill: backup-coverage credits the backup the drill restored
# drill-demo from (a namespace newer than its backup counts when a Velero
# restore of all of it from that backup made it).
step "The posture checks (inject nothing): backups of env=production namespaces, Pod Security, Secrets encrypted at rest"
# encryption-at-rest can PASS only on the canary's stored bytes: the demo
# points it at the local cluster's etcd (plain HTTP on loopback); without
# that, the counters alone make it INCONCLUSIVE at best.
etcd_url=$(tr '\0' '\n' <"/proc/$(cat "$CLUSTER_DIR/etcd.pid")/cmdline" | grep -A1 -x -- --listen-client-urls | tail -1)
cp drills/encryption-at-rest.yaml "$CLUSTER_DIR/encryption-at-rest.yaml"
printf '    etcd: {endpoints: ["%s"]}\n' "$etcd_url" >>"$CLUSTER_DIR/encryption-at-rest.yaml"
for check in backup-coverage pod-security-audit encryption-at-rest; do
  file="drills/$check.yaml"
  [ "$check" != encryption-at-rest ] || file="$CLUSTER_DIR/encryption-at-rest.yaml"
  "$DRILLBOT" run -f "$file" --wait >"$CLUSTER_DIR/logs/$check.log" 2>&1 || true
  "$KUBECTL" get drillruns -n drillbot-system -l drillbot.io/drill="$check" \
    -o jsonpath='{range .items[*]}{.spec.drill}{": "}{.status.verdict}{" - "}{.status.findings[0]}{"\n"}{end}'
done

step "The result is recorded in the cluster"
"$KUBECTL" get drillruns -n drillbot-system
"$KUBECTL" -n drill-demo get deployments,statefulsets,pods,pvc -o wide

step "The DR status report (drillbot report --output markdown), for audit evidence"
"$DRILLBOT" report --drills drills --output markdown
"$DRILLBOT" report --drills drills --output html >"$CLUSTER_DIR/dr-status.html"
echo "(the same as one HTML page, with an RTO chart per drill: $CLUSTER_DIR/dr-status.html)"

step "Starting the daemon (drillbot serve) with metrics on 127.0.0.1:${DEMO_METRICS_PORT:=9090}"
# setsid makes it a process group leader, so make cluster-down can stop it.
setsid "$DRILLBOT" serve --drills drills --listen "127.0.0.1:$DEMO_METRICS_PORT" >"$CLUSTER_DIR/logs/drillbot-serve.log" 2>&1 &
echo $! >"$CLUSTER_DIR/drillbot-serve.pid"
for _ in $(seq 50); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$DEMO_METRICS_PORT") 2>/dev/null; then break; fi
  sleep 0.2
done
if command -v curl >/dev/null; then
  # The drill's last results (loaded from its DrillRun at start); every
  # catalog drill also exports its targets and counters, at 0 (the
  # counters count this daemon's runs): curl the endpoint for all.
  curl -fsS "127.0.0.1:$DEMO_METRICS_PORT/readyz" >/dev/null && curl -fsS "127.0.0.1:$DEMO_METRICS_PORT/metrics" |
    grep '^drillbot_' | grep 'drill="namespace-restore"' | grep -v -e '_bucket{' -e '_sum{' -e '_count{' -e '_total{' || true
fi

cat <<MSG

The local cluster and drillbot serve are still running, for a closer look:
  export KUBECONFIG=$KUBECONFIG
  $KUBECTL get drillruns -n drillbot-system -o yaml
  $KUBECTL describe drillrun -n drillbot-system
  curl 127.0.0.1:$DEMO_METRICS_PORT/metrics
Stop them with: make cluster-down
MSG
exit $code
