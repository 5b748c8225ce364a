// Package alerts reads what a cluster's monitoring says: the alerts
// Alertmanager holds (its API v2, through Alertmanager's own client) and
// label matchers in Alertmanager's syntax. The engine uses it to time how
// long an alert took to fire after a drill's fault (detection), and to stop
// drills while an incident is open.
package alerts

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	clientruntime "github.com/go-openapi/runtime/client"
	"github.com/go-openapi/strfmt"
	amclient "github.com/prometheus/alertmanager/api/v2/client"
	amalert "github.com/prometheus/alertmanager/api/v2/client/alert"
	"github.com/prometheus/alertmanager/matcher/parse"
	"github.com/prometheus/alertmanager/pkg/labels"
	promconfig "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
)

// Alert is one active alert as Alertmanager holds it.
type Alert struct {
	// Name is the alertname label.
	Name   string
	Labels map[string]string
	// StartsAt is when the alert started firing, as Prometheus sent it.
	StartsAt time.Time
	// Suppressed is true when a silence or an inhibition keeps anyone from
	// being notified of it.
	Suppressed bool
	// Unprocessed is true when Alertmanager has received it but not yet
	// routed it: it is active, but nobody has been notified yet.
	Unprocessed bool
}

// Notified says whether anyone can have been told of the alert: it is
// neither suppressed nor still unprocessed.
func (a Alert) Notified() bool { return !a.Suppressed && !a.Unprocessed }

// String names the alert with its labels, sorted.
func (a Alert) String() string {
	keys := make([]string, 0, len(a.Labels))
	for k := range a.Labels {
		if k != model.AlertNameLabel {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%q", k, a.Labels[k]))
	}
	return a.Name + "{" + strings.Join(parts, ",") + "}"
}

// Matchers is a parsed set of label matchers, such as
// {severity="critical",team=~"platform|sre"}. A set matches an alert when
// every matcher does.
type Matchers struct {
	src string
	ms  labels.Matchers
}

// ParseMatchers parses Alertmanager's matcher syntax (the UTF-8 parser of
// Alertmanager 0.27 and later; braces optional).
func ParseMatchers(s string) (Matchers, error) {
	ms, err := parse.Matchers(s)
	if err != nil {
		return Matchers{}, err
	}
	if len(ms) == 0 {
		return Matchers{}, fmt.Errorf("no matcher in %q", s)
	}
	return Matchers{src: s, ms: ms}, nil
}

// Matches reports whether every matcher matches the labels.
func (m Matchers) Matches(l map[string]string) bool {
	set := make(model.LabelSet, len(l))
	for k, v := range l {
		set[model.LabelName(k)] = model.LabelValue(v)
	}
	return len(m.ms) > 0 && m.ms.Matches(set)
}

// String is the matchers as written.
func (m Matchers) String() string { return m.src }

// ClusterLabel is the label that names a cluster on the alerts of an
// Alertmanager shared by several (the one the chart's clusterLabel adds to
// drillbot's own series).
const ClusterLabel = "cluster"

// Scope is a cluster's identity on the alerts: one label and its value,
// such as cluster="prod-eu". An alert is in scope only when it carries the
// label with exactly that value; an alert without the label is not.
type Scope struct{ Label, Value string }

// ParseScope parses name=value (the value may be quoted), e.g.
// cluster=prod-eu.
func ParseScope(s string) (Scope, error) {
	name, value, ok := strings.Cut(s, "=")
	name, value = strings.TrimSpace(name), strings.TrimSpace(value)
	if uq, err := strconv.Unquote(value); err == nil {
		value = uq
	}
	if !ok || !model.LabelName(name).IsValidLegacy() || value == "" {
		return Scope{}, fmt.Errorf("cluster identity %q: want label=value, such as cluster=prod-eu", s)
	}
	return Scope{Label: name, Value: value}, nil
}

// IsZero says no identity is set.
func (s Scope) IsZero() bool { return s.Label == "" }

// Matches reports whether the labels carry the identity. The zero Scope
// matches everything.
func (s Scope) Matches(l map[string]string) bool {
	if s.IsZero() {
		return true
	}
	v, ok := l[s.Label]
	return ok && v == s.Value
}

// String is the identity as a matcher, e.g. cluster="prod-eu".
func (s Scope) String() string { return fmt.Sprintf("%s=%q", s.Label, s.Value) }

// Alertmanager reads alerts from Alertmanager's API v2.
type Alertmanager struct {
	api *amclient.AlertmanagerAPI
	url string
}

// NewAlertmanager connects to the Alertmanager at rawURL (e.g.
// http://alertmanager.monitoring:9093, a path prefix kept). httpConfigFile,
// when set, is a Prometheus HTTP client configuration (authorization, basic
// auth, TLS, proxy), as amtool's --http.config.file takes.
func NewAlertmanager(rawURL, httpConfigFile string) (*Alertmanager, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("alertmanager URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("alertmanager URL %q: want http(s)://host[:port][/path]", rawURL)
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	if httpConfigFile != "" {
		cfg, _, err := promconfig.LoadHTTPConfigFile(httpConfigFile)
		if err != nil {
			return nil, fmt.Errorf("alertmanager HTTP config %s: %w", httpConfigFile, err)
		}
		if hc, err = promconfig.NewClientFromConfig(*cfg, "drillbot"); err != nil {
			return nil, fmt.Errorf("alertmanager HTTP config %s: %w", httpConfigFile, err)
		}
		hc.Timeout = 10 * time.Second
	}
	rt := clientruntime.NewWithClient(u.Host, path.Join("/", u.Path, "api/v2"), []string{u.Scheme}, hc)
	return &Alertmanager{api: amclient.New(rt, strfmt.Default), url: u.Redacted()}, nil
}

// Active returns every active alert, silenced and inhibited ones included
// (marked Suppressed), and those not yet routed (marked Unprocessed).
func (a *Alertmanager) Active(ctx context.Context) ([]Alert, error) {
	yes := true
	params := amalert.NewGetAlertsParamsWithContext(ctx).WithActive(&yes).WithSilenced(&yes).WithInhibited(&yes)
	ok, err := a.api.Alert.GetAlerts(params)
	if err != nil {
		return nil, fmt.Errorf("alertmanager %s: list alerts: %w", a.url, err)
	}
	out := make([]Alert, 0, len(ok.Payload))
	for _, g := range ok.Payload {
		if g == nil {
			continue
		}
		al := Alert{Labels: map[string]string{}}
		for k, v := range g.Labels {
			al.Labels[k] = v
		}
		al.Name = al.Labels[model.AlertNameLabel]
		if g.StartsAt != nil {
			al.StartsAt = time.Time(*g.StartsAt)
		}
		if g.Status != nil && g.Status.State != nil {
			al.Suppressed = *g.Status.State == "suppressed"
			al.Unprocessed = *g.Status.State == "unprocessed"
		}
		out = append(out, al)
	}
	return out, nil
}
