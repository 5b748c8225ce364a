package localcluster

import "testing"

func TestIsOurRule(t *testing.T) {
	for _, tc := range []struct {
		line string
		want bool
	}{
		{`-A FORWARD -m comment --comment "cali:wUHhoiAYhphO9Mso" -j cali-FORWARD`, true},
		// Felix's rules in a built-in chain that jump to none of its chains.
		{`-A FORWARD -m comment --comment "cali:ay4ark8I6Vs5Y0P3" -m comment --comment "Policy explicitly accepted packet." -m mark --mark 0x10000/0x10000 -j RETURN`, true},
		{`-A FORWARD -m comment --comment "cali:S_ET54QjwAWdD0o7" -j MARK --set-xmark 0x10000/0x10000`, true},
		{`-A cali-fw-cali1234 -j DROP`, true},
		{`-A FORWARD -j KUBE-FORWARD`, true},
		{`-A FORWARD -j DRILLBOT-NODE`, true},
		{`-A KUBE-SERVICES -j RETURN`, true},
		// The machine's own.
		{`-A FORWARD -j DOCKER-USER`, false},
		{`-A INPUT -m comment --comment "calico docs" -j ACCEPT`, false},
		{`-A INPUT -i lo -j ACCEPT`, false},
		{`:FORWARD ACCEPT [0:0]`, false},
	} {
		if got := isOurRule(tc.line); got != tc.want {
			t.Errorf("isOurRule(%q) = %v, want %v", tc.line, got, tc.want)
		}
	}
}
