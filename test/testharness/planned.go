package testharness

import (
	"fmt"
	"net/http"
	"strings"

	"k8s.io/apimachinery/pkg/util/sets"
	apirequest "k8s.io/apiserver/pkg/endpoints/request"

	"github.com/drillbot-io/drillbot/internal/engine"
	"github.com/drillbot-io/drillbot/test/localcluster"
)

// requestInfo parses requests as the API server does (verb, group,
// resource, subresource, namespace, name), so the check below is the
// authorizer's reading, not one of ours.
var requestInfo = &apirequest.RequestInfoFactory{APIPrefixes: sets.NewString("api", "apis"), GrouplessAPIPrefixes: sets.NewString("api")}

// Unplanned returns the requests that no call of the plan covers: a run
// must make only the calls drillbot plan lists (a dry run only where the
// plan says so). Discovery and other non-resource requests are not calls.
func Unplanned(reqs []localcluster.Request, calls []engine.Call) ([]string, error) {
	var out []string
	for _, r := range reqs {
		req, err := http.NewRequest(r.Method, r.URL.String(), nil)
		if err != nil {
			return nil, err
		}
		ri, err := requestInfo.NewRequestInfo(req)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", r.Method, r.URL, err)
		}
		if !ri.IsResourceRequest {
			continue
		}
		res := ri.Resource
		if ri.Subresource != "" {
			res += "/" + ri.Subresource
		}
		dry := r.URL.Query().Get("dryRun") != ""
		planned := false
		for _, c := range calls {
			if c.Verb == ri.Verb && (c.Group == ri.APIGroup || c.Group == "*") && (c.Resource == res || c.Resource == "*") && c.DryRun == dry &&
				(c.Namespace == "" || c.Namespace == ri.Namespace) && (c.Name == "" || c.Name == ri.Name) {
				planned = true
				break
			}
		}
		if !planned {
			what := fmt.Sprintf("%s %s/%s in %q name %q", ri.Verb, ri.APIGroup, res, ri.Namespace, ri.Name)
			if dry {
				what += " (dry run)"
			}
			out = append(out, what+" ("+r.Method+" "+strings.SplitN(r.URL.String(), "?", 2)[0]+")")
		}
	}
	return out, nil
}
