package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/drillbot-io/drillbot/internal/alerts"
	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
)

// alertFlags point serve and run at the cluster's Alertmanager and at the
// policy file (stop conditions, freeze windows).
type alertFlags struct {
	alertmanagerURL, httpConfig, policyFile string
	stopWhen                                []string
	poll                                    time.Duration
}

func (a *alertFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&a.alertmanagerURL, "alertmanager-url", envOr("DRILLBOT_ALERTMANAGER_URL", ""), "Alertmanager whose alerts drills expect and stop on (API v2), e.g. http://alertmanager.monitoring:9093")
	fs.StringVar(&a.httpConfig, "alertmanager-http-config", "", "Prometheus HTTP client config for the Alertmanager (authorization, basic auth, TLS), as amtool's --http.config.file")
	fs.StringVar(&a.policyFile, "policy", "", "DrillPolicy file: stop conditions and freeze windows")
	fs.StringArrayVar(&a.stopWhen, "stop-when", nil, `stop condition (repeatable), Alertmanager matchers such as '{severity="critical"}': while a matching alert is active no drill starts and running drills stop and revert`)
	fs.DurationVar(&a.poll, "alert-poll-interval", 10*time.Second, "how often a running drill reads the alerts")
}

// alertOptions are what the flags give the engine.
type alertOptions struct {
	source   engine.AlertSource
	stopWhen []alerts.Matchers
	freeze   engine.Freezer
	poll     time.Duration
}

// load builds the options. defs are checked too: a drill that reads alerts
// with no Alertmanager to read them from could never run, and is refused
// with its file named.
func (a *alertFlags) load(defs []drill.Definition) (alertOptions, error) {
	o := alertOptions{poll: a.poll}
	if a.poll < time.Second {
		return o, fmt.Errorf("--alert-poll-interval %s: at least 1s", a.poll)
	}
	for i, src := range a.stopWhen {
		m, err := alerts.ParseMatchers(src)
		if err != nil {
			return o, fmt.Errorf("--stop-when[%d] %q: not Alertmanager matchers: %w", i, src, err)
		}
		o.stopWhen = append(o.stopWhen, m)
	}
	if a.policyFile != "" {
		p, err := drill.LoadPolicy(a.policyFile)
		if err != nil {
			return o, err
		}
		o.stopWhen = append(o.stopWhen, p.StopWhen...)
		if len(p.Freeze) > 0 {
			o.freeze = p
		}
	}
	if a.alertmanagerURL != "" {
		am, err := alerts.NewAlertmanager(a.alertmanagerURL, a.httpConfig)
		if err != nil {
			return o, err
		}
		o.source = am
		return o, nil
	}
	var needs []string
	if len(o.stopWhen) > 0 {
		needs = append(needs, "stop conditions (--stop-when, --policy)")
	}
	for _, d := range defs {
		if len(d.Alerts.Expect) > 0 || len(d.Alerts.StopWhen) > 0 {
			needs = append(needs, fmt.Sprintf("%s: drill %s: spec.alerts", d.Source, d.Name))
		}
	}
	if len(needs) > 0 {
		return o, fmt.Errorf("no --alertmanager-url, but these read alerts: %s", strings.Join(needs, "; "))
	}
	return o, nil
}
