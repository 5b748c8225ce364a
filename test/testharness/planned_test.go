package testharness

import (
	"net/url"
	"strings"
	"testing"

	"github.com/drillbot-io/drillbot/internal/engine"
	"github.com/drillbot-io/drillbot/test/localcluster"
)

func TestUnplanned(t *testing.T) {
	b := engine.In("Injecting")
	calls := []engine.Call{
		b.Call("delete", "", "pods", "shop", "", "kill"),
		b.Call("list", "", "namespaces", "", "shop", "wait gone"),
		b.Call("watch", "", "namespaces", "", "shop", "wait gone"),
		b.Call("update", "drillbot.io", "drillruns/status", "drillbot-system", "", "status"),
		b.Call("get", "", "namespaces", "shop", "shop", "opt-in"),
		b.DryRun("", "pods", "shop", "probe"),
	}
	cases := []struct {
		name, method, url string
		unplanned         bool
	}{
		{"delete a pod by name", "DELETE", "/api/v1/namespaces/shop/pods/web-1", false},
		{"delete a pod elsewhere", "DELETE", "/api/v1/namespaces/other/pods/web-1", true},
		{"delete every pod", "DELETE", "/api/v1/namespaces/shop/pods", true},
		{"list by field selector", "GET", "/api/v1/namespaces?fieldSelector=metadata.name%3Dshop", false},
		{"list every namespace", "GET", "/api/v1/namespaces", true},
		{"watch by name", "GET", "/api/v1/namespaces?fieldSelector=metadata.name%3Dshop&watch=true", false},
		{"status subresource", "PUT", "/apis/drillbot.io/v1alpha1/namespaces/drillbot-system/drillruns/r1/status", false},
		{"the object, not its status", "PUT", "/apis/drillbot.io/v1alpha1/namespaces/drillbot-system/drillruns/r1", true},
		{"get the target namespace", "GET", "/api/v1/namespaces/shop", false},
		{"a dry run the plan lists", "POST", "/api/v1/namespaces/shop/pods?dryRun=All", false},
		{"a real create where the plan says dry run", "POST", "/api/v1/namespaces/shop/pods", true},
		{"discovery is no call", "GET", "/apis/apps/v1", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u, err := url.Parse("https://127.0.0.1:6443" + tc.url)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Unplanned([]localcluster.Request{{Method: tc.method, URL: u}}, calls)
			if err != nil {
				t.Fatal(err)
			}
			if (len(got) > 0) != tc.unplanned {
				t.Errorf("unplanned %v, want %v", strings.Join(got, "; "), tc.unplanned)
			}
		})
	}
}
