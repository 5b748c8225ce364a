package podkill

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
)

// An admission controller may change its own registration when its pods
// die, and the API server then applies whatever is left: Kyverno 1.9
// deleted its webhook configurations when its Deployment went to zero
// (kyverno/kyverno#6554), and has removed its webhooks' rules when the API
// server could not reach it (#7852). The drill watches the configurations
// it selects: one deleted, or losing a webhook or a rule, during the drill
// is a finding, and one not back as it was after recovery is a failure.

// registration is the webhook configurations selected, as key ("validating
// NAME" or "mutating NAME") to the set of "webhook rule" strings.
type registration map[string][]string

func ruleStrings(webhook string, rules []admissionregistrationv1.RuleWithOperations, fp *admissionregistrationv1.FailurePolicyType) []string {
	policy := "Fail" // the API's default
	if fp != nil {
		policy = string(*fp)
	}
	out := []string{webhook + " failurePolicy=" + policy}
	for _, r := range rules {
		scope := "*"
		if r.Scope != nil {
			scope = string(*r.Scope)
		}
		for _, op := range r.Operations {
			for _, g := range r.APIGroups {
				for _, v := range r.APIVersions {
					for _, res := range r.Resources {
						out = append(out, fmt.Sprintf("%s %s %s/%s/%s %s", webhook, op, g, v, res, scope))
					}
				}
			}
		}
	}
	return out
}

func webhookRules[W any](ws []W, rules func(W) []string) []string {
	var out []string
	for _, w := range ws {
		out = append(out, rules(w)...)
	}
	return out
}

// readRegistration lists the validating and mutating webhook configurations
// matching selector.
func readRegistration(ctx context.Context, c kubernetes.Interface, selector string) (registration, error) {
	opts := metav1.ListOptions{LabelSelector: selector}
	reg := registration{}
	vs, err := c.AdmissionregistrationV1().ValidatingWebhookConfigurations().List(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("list validating webhook configurations %s: %w", selector, err)
	}
	for _, cfg := range vs.Items {
		reg["validating "+cfg.Name] = webhookRules(cfg.Webhooks, func(w admissionregistrationv1.ValidatingWebhook) []string {
			return ruleStrings(w.Name, w.Rules, w.FailurePolicy)
		})
	}
	ms, err := c.AdmissionregistrationV1().MutatingWebhookConfigurations().List(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("list mutating webhook configurations %s: %w", selector, err)
	}
	for _, cfg := range ms.Items {
		reg["mutating "+cfg.Name] = webhookRules(cfg.Webhooks, func(w admissionregistrationv1.MutatingWebhook) []string {
			return ruleStrings(w.Name, w.Rules, w.FailurePolicy)
		})
	}
	return reg, nil
}

// losses lists what of before is not in now: configurations deleted, and
// per configuration the webhooks or rules it lost (a changed failure
// policy shows as one lost and one new).
func (before registration) losses(now registration) []string {
	var out []string
	for key, rules := range before {
		have, ok := now[key]
		if !ok {
			out = append(out, key+" webhook configuration deleted")
			continue
		}
		var lost []string
		for _, r := range rules {
			if !slices.Contains(have, r) {
				lost = append(lost, r)
			}
		}
		if len(lost) > 0 {
			out = append(out, fmt.Sprintf("%s lost %s", key, strings.Join(lost, "; ")))
		}
	}
	slices.Sort(out)
	return out
}

// registrationWatch records every loss seen while the drill runs, with the
// time it was first seen.
type registrationWatch struct {
	c        kubernetes.Interface
	selector string
	before   registration

	mu    sync.Mutex
	seen  map[string]time.Time
	order []string
	errs  int
}

func newRegistrationWatch(ctx context.Context, c kubernetes.Interface, selector string) (*registrationWatch, error) {
	if _, err := labels.Parse(selector); err != nil {
		return nil, err
	}
	before, err := readRegistration(ctx, c, selector)
	if err != nil {
		return nil, err
	}
	return &registrationWatch{c: c, selector: selector, before: before, seen: map[string]time.Time{}}, nil
}

// check reads the registration once and records new losses; it returns
// the losses now.
func (w *registrationWatch) check(ctx context.Context, now time.Time) ([]string, error) {
	reg, err := readRegistration(ctx, w.c, w.selector)
	if err != nil {
		w.mu.Lock()
		w.errs++
		w.mu.Unlock()
		return nil, err
	}
	l := w.before.losses(reg)
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range l {
		if _, ok := w.seen[s]; !ok {
			w.seen[s] = now
			w.order = append(w.order, s)
		}
	}
	return l, nil
}

// findings are the losses seen during the drill, each with when it was
// first seen relative to start.
func (w *registrationWatch) findings(start time.Time) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, s := range w.order {
		out = append(out, fmt.Sprintf("admission registration changed during the drill (+%s): %s", w.seen[s].Sub(start).Round(time.Millisecond), s))
	}
	if w.errs > 0 {
		out = append(out, fmt.Sprintf("the webhook configurations could not be read %d times during the drill: a change then may have gone unseen", w.errs))
	}
	return out
}
