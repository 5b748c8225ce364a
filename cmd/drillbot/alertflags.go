package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/client-go/kubernetes"

	"github.com/drillbot-io/drillbot/internal/alerts"
	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
	"github.com/drillbot-io/drillbot/internal/halt"
	"github.com/drillbot-io/drillbot/internal/kube"
)

// alertFlags point serve, run and plan at the cluster's Alertmanager and
// at the policy file (stop conditions, freeze windows). They add to the
// cluster's own policy (halt.Policies), never replace it.
type alertFlags struct {
	alertmanagerURL, httpConfig, policyFile string
	stopWhen                                []string
	poll                                    time.Duration
	// cluster is this cluster's identity on the alerts (label=value).
	cluster string
}

// maxAlertPoll bounds --alert-poll-interval: three unreadable polls stop a
// drill, so a longer interval leaves its stop conditions unchecked for
// longer than 3m, and a detection deadline is decided only to a poll.
const maxAlertPoll = time.Minute

func (a *alertFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&a.alertmanagerURL, "alertmanager-url", envOr("DRILLBOT_ALERTMANAGER_URL", ""), "Alertmanager whose alerts drills expect and stop on (API v2), e.g. http://alertmanager.monitoring:9093 (default: the cluster's, from configmap drillbot-policy in -n)")
	fs.StringVar(&a.httpConfig, "alertmanager-http-config", "", "Prometheus HTTP client config for the Alertmanager (authorization, basic auth, TLS), as amtool's --http.config.file")
	fs.StringVar(&a.policyFile, "policy", "", "DrillPolicy file: stop conditions and freeze windows, obeyed with the cluster's own (configmap drillbot-policy in -n)")
	fs.StringArrayVar(&a.stopWhen, "stop-when", nil, `stop condition (repeatable), Alertmanager matchers such as '{severity="critical"}': while a matching alert is active no drill starts and running drills stop and revert`)
	fs.DurationVar(&a.poll, "alert-poll-interval", 10*time.Second, "how often a running drill reads the alerts (1s to 1m)")
	fs.StringVar(&a.cluster, "alert-cluster-label", envOr("DRILLBOT_ALERT_CLUSTER_LABEL", ""), `this cluster's label on the alerts, e.g. cluster=prod-eu: an expected alert counts only when it carries it (stop conditions are not narrowed). Unset: an expected alert that names a cluster is not measured`)
}

// alertOptions are what the flags give the engine.
type alertOptions struct {
	source   engine.AlertSource
	stopWhen []alerts.Matchers
	freeze   engine.Freezer
	poll     time.Duration
	scope    alerts.Scope
}

// load builds the options from the flags and the cluster's policy cp (see
// clusterPolicy), which binds every entry point whatever its flags: stop
// conditions are the union of --stop-when, --policy and the cluster's;
// freeze windows those of --policy and the cluster's; the Alertmanager is
// --alertmanager-url, else the cluster's. defs are checked too: a drill
// that reads alerts with no Alertmanager to read them from could never
// run, and is refused with its file named, as are stop conditions. With
// probe (run, plan) the alerts are read once now, and a process that
// cannot read them while something needs them refuses: on doubt, no fault.
// serve does not probe: it would crash-loop, and stop sweeping, while the
// Alertmanager is down; its runs record the unreadable alerts instead.
func (a *alertFlags) load(ctx context.Context, defs []drill.Definition, cp halt.ClusterPolicy, probe bool) (alertOptions, error) {
	o := alertOptions{poll: a.poll}
	if a.poll < time.Second || a.poll > maxAlertPoll {
		return o, fmt.Errorf("--alert-poll-interval %s: between 1s and %s (three unreadable polls stop a drill; a longer interval leaves stop conditions unchecked too long)", a.poll, maxAlertPoll)
	}
	o.scope = cp.AlertClusterLabel
	if a.cluster != "" {
		scope, err := alerts.ParseScope(a.cluster)
		if err != nil {
			return o, fmt.Errorf("--alert-cluster-label: %w", err)
		}
		// Two identities for one cluster: one of them credits another
		// cluster's alerts. On doubt, refuse.
		if !cp.AlertClusterLabel.IsZero() && scope != cp.AlertClusterLabel {
			return o, fmt.Errorf("--alert-cluster-label %s=%s disagrees with %s's %s=%s: which cluster is this?",
				scope.Label, scope.Value, cp.Source, cp.AlertClusterLabel.Label, cp.AlertClusterLabel.Value)
		}
		o.scope = scope
	}
	for i, src := range a.stopWhen {
		m, err := alerts.ParseMatchers(src)
		if err != nil {
			return o, fmt.Errorf("--stop-when[%d] %q: not Alertmanager matchers: %w", i, src, err)
		}
		o.stopWhen = append(o.stopWhen, m)
	}
	var freeze drill.Policy
	if a.policyFile != "" {
		p, err := drill.LoadPolicy(a.policyFile)
		if err != nil {
			return o, err
		}
		o.stopWhen = append(o.stopWhen, p.StopWhen...)
		freeze.Freeze = append(freeze.Freeze, p.Freeze...)
	}
	var needs []string
	if len(o.stopWhen) > 0 {
		needs = append(needs, "stop conditions (--stop-when, --policy)")
	}
	if len(cp.Policy.StopWhen) > 0 {
		o.stopWhen = append(o.stopWhen, cp.Policy.StopWhen...)
		needs = append(needs, "the cluster's stop conditions ("+cp.Source+")")
	}
	freeze.Freeze = append(freeze.Freeze, cp.Policy.Freeze...)
	if len(freeze.Freeze) > 0 {
		o.freeze = freeze
	}
	for _, d := range defs {
		if len(d.Alerts.Expect) > 0 || len(d.Alerts.StopWhen) > 0 {
			needs = append(needs, fmt.Sprintf("%s: drill %s: spec.alerts", d.Source, d.Name))
		}
	}
	url, from := a.alertmanagerURL, "--alertmanager-url"
	if url == "" && cp.AlertmanagerURL != "" {
		url, from = cp.AlertmanagerURL, "the Alertmanager of "+cp.Source
	}
	if url == "" {
		if len(needs) > 0 {
			where := ""
			if cp.Source != "" {
				where = " (and none in " + cp.Source + ")"
			}
			return o, fmt.Errorf("no --alertmanager-url%s, but these read alerts: %s", where, strings.Join(needs, "; "))
		}
		return o, nil
	}
	am, err := alerts.NewAlertmanager(url, a.httpConfig)
	if err != nil {
		return o, fmt.Errorf("%s: %w", from, err)
	}
	o.source = am
	if probe && len(needs) > 0 {
		pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		if _, err := am.Active(pctx); err != nil {
			return o, fmt.Errorf("the alerts cannot be read from %s (%w), but these read alerts: %s; nothing runs. Point --alertmanager-url at an Alertmanager this process reaches (e.g. through kubectl port-forward)",
				from, err, strings.Join(needs, "; "))
		}
	}
	return o, nil
}

// clusterPolicy reads the cluster's policy (the ConfigMap beside the halt
// switch in drillbot's namespace) through cf's connection. Absent, it is
// no policy; unreadable or invalid, an error: the caller refuses to run.
func clusterPolicy(ctx context.Context, cf clusterFlags) (halt.Policies, halt.ClusterPolicy, error) {
	cfg, err := kube.RESTConfig(cf.kubeconfig, cf.context)
	if err != nil {
		return halt.Policies{}, halt.ClusterPolicy{}, err
	}
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return halt.Policies{}, halt.ClusterPolicy{}, err
	}
	s := halt.Policies{Kube: kc, Namespace: cf.namespace}
	cp, err := s.Load(ctx)
	return s, cp, err
}
