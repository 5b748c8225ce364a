package namespacerestore

import "testing"

// TestIncludesNamespace: namespace lists as Velero (gobwas/glob) reads
// them, where path.Match reads some otherwise.
func TestIncludesNamespace(t *testing.T) {
	cases := []struct {
		name               string
		included, excluded []string
		want               bool
		err                bool
	}{
		{name: "empty includes all", want: true},
		{name: "star", included: []string{"*"}, want: true},
		{name: "literal", included: []string{"shop"}, want: true},
		{name: "other literal", included: []string{"shops"}},
		{name: "star suffix", included: []string{"sh*"}, want: true},
		{name: "question", included: []string{"sho?"}, want: true},
		{name: "range", included: []string{"[r-t]hop"}, want: true},
		{name: "set", included: []string{"[xyz]hop"}},
		{name: "negated set", included: []string{"[!xyz]hop"}, want: true},
		{name: "negated range", included: []string{"[!a-z]hop"}},
		{name: "alternatives", included: []string{"{billing,shop}"}, want: true},
		{name: "nested alternatives", included: []string{"s{h{op,ed},x}"}, want: true},
		{name: "double star", included: []string{"**"}, want: true},
		{name: "escaped star is literal", included: []string{`sho\*`}},
		{name: "exclude wins over star", included: []string{"*"}, excluded: []string{"sh*"}},
		{name: "exclude alternatives", excluded: []string{"{shop,billing}"}},
		{name: "exclude other", excluded: []string{"billing"}, want: true},
		{name: "a class is a set or one range", included: []string{"[a-cs]hop"}, err: true},
		{name: "unclosed class", excluded: []string{"[shop"}, err: true},
		// gobwas/glob (so Velero) compiles an unclosed brace, and it matches.
		{name: "unclosed alternatives match as in Velero", excluded: []string{"{shop"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := IncludesNamespace(tc.included, tc.excluded, "shop")
			if (err != nil) != tc.err || (err == nil && got != tc.want) {
				t.Errorf("IncludesNamespace(%q, %q, shop) = %v, %v; want %v (error: %v)", tc.included, tc.excluded, got, err, tc.want, tc.err)
			}
		})
	}
}
