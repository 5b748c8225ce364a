package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
)

// AuditEvent is the part of an API server audit event (audit.k8s.io/v1,
// metadata level) the footprint figure reads.
type AuditEvent struct {
	Verb       string `json:"verb"`
	RequestURI string `json:"requestURI"`
	User       struct {
		Username string `json:"username"`
	} `json:"user"`
	UserAgent string     `json:"userAgent"`
	ObjectRef *ObjectRef `json:"objectRef"`
	Received  time.Time  `json:"requestReceivedTimestamp"`
}

// ObjectRef is what a request was about.
type ObjectRef struct {
	Resource  string `json:"resource"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	APIGroup  string `json:"apiGroup"`
}

// Target is "resource.group" and, for namespaced requests, "in namespace".
func (e AuditEvent) Target() string {
	if e.ObjectRef == nil {
		return e.RequestURI
	}
	r := e.ObjectRef.Resource
	if e.ObjectRef.APIGroup != "" {
		r += "." + e.ObjectRef.APIGroup
	}
	if e.ObjectRef.Name != "" {
		r += " " + e.ObjectRef.Name
	}
	if e.ObjectRef.Namespace == "" {
		return r + " (cluster-wide)"
	}
	return r + " in " + e.ObjectRef.Namespace
}

// ReadAudit reads the events of user received in [from, to) from an audit
// log file.
func ReadAudit(path, user string, from, to time.Time) ([]AuditEvent, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []AuditEvent
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var e AuditEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("audit log %s: %w", path, err)
		}
		if e.User.Username == user && !e.Received.Before(from) && e.Received.Before(to) {
			out = append(out, e)
		}
	}
	return out, sc.Err()
}

// RequestMix counts events by "verb target", most frequent first.
func RequestMix(events []AuditEvent) []string {
	counts := map[string]int{}
	for _, e := range events {
		counts[e.Verb+" "+e.Target()]++
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if counts[keys[i]] != counts[keys[j]] {
			return counts[keys[i]] > counts[keys[j]]
		}
		return keys[i] < keys[j]
	})
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = fmt.Sprintf("%d x %s", counts[k], k)
	}
	return out
}

// BroadReads are the list and watch requests beyond drillbot's own
// objects (its DrillRuns, and single named objects such as the halt switch
// in its namespace) or across the whole cluster: what an idle daemon must
// not make. The one exception is the marker loop's list of the namespaces
// labelled for drills: the API server sends only those (a label selector),
// one request a minute for all targets.
func BroadReads(events []AuditEvent) []AuditEvent {
	var out []AuditEvent
	for _, e := range events {
		if e.Verb != "list" && e.Verb != "watch" || optInList(e) {
			continue
		}
		own := e.ObjectRef != nil && e.ObjectRef.Namespace != "" && (e.ObjectRef.APIGroup == "drillbot.io" || e.ObjectRef.Name != "")
		if !own || strings.Contains(e.Target(), "cluster-wide") {
			out = append(out, e)
		}
	}
	return out
}

// optInList is a list of the namespaces labelled for drills.
func optInList(e AuditEvent) bool {
	if e.Verb != "list" || e.ObjectRef == nil || e.ObjectRef.Resource != "namespaces" || e.ObjectRef.Name != "" {
		return false
	}
	u, err := url.Parse(e.RequestURI)
	return err == nil && u.Query().Get("labelSelector") == v1alpha1.LabelAllowDisaster+"=true"
}
