package podsecurityaudit

import (
	"fmt"
	"slices"
	"strings"

	psaapi "k8s.io/pod-security-admission/api"
	psapolicy "k8s.io/pod-security-admission/policy"
)

// Pin is what a namespace's enforce-version label does to the required
// level: the API server evaluates the namespace's pods with the checks of
// the pinned release, so a pin to a release whose level lacks a check the
// API server enforces at latest admits pods the audit (at latest) names as
// violations.
type Pin struct {
	// Invalid: the label is not "latest" nor "v1.<minor>".
	Invalid bool
	// Lacks names each check of the required level the API server enforces
	// at latest but not at the pinned release ("runAsUser (since v1.23)").
	Lacks []string
	// Against is the release the pin was compared with: the API server's,
	// or the newest drillbot's library knows when the server is newer.
	Against string
	// Unknown, when set, says why whether the pin lacks checks is unknown.
	Unknown string
}

// Compliant reports whether the pin leaves every check of the required
// level enforced (an unknown pin is not compliant, nor a finding of FAIL).
func (p Pin) Compliant() bool { return !p.Invalid && len(p.Lacks) == 0 && p.Unknown == "" }

// loosened are the revisions of a check that only admit more pods than the
// definition before them: a pin from before one enforces the stricter
// definition, which is no gap. Every other revision is taken as one that
// tightens the check (TestRevisionsClassified lists the library's revisions
// so that a new one is read before it is trusted).
var loosened = map[psapolicy.CheckID][]psaapi.Version{
	// 1.25: Windows pods (spec.os.name=windows) exempted.
	"allowPrivilegeEscalation":  {psaapi.MajorMinorVersion(1, 25)},
	"capabilities_restricted":   {psaapi.MajorMinorVersion(1, 25)},
	"seccompProfile_restricted": {psaapi.MajorMinorVersion(1, 25)},
	// 1.31: the container_engine_t type allowed too.
	"seLinuxOptions": {psaapi.MajorMinorVersion(1, 31)},
	// Each a superset of the sysctls allowed before.
	"sysctls": {psaapi.MajorMinorVersion(1, 27), psaapi.MajorMinorVersion(1, 29), psaapi.MajorMinorVersion(1, 32)},
}

// judgePin compares the checks of the required level at the pinned release
// with those the API server (at server) enforces at latest. serverErr is why
// the server's version is unknown.
func judgePin(checks []psapolicy.Check, required psaapi.Level, label string, server psaapi.Version, serverErr error) Pin {
	if label == "" {
		return Pin{}
	}
	pinned, err := psaapi.ParseVersion(label)
	if err != nil {
		return Pin{Invalid: true}
	}
	if pinned.Latest() || required == psaapi.LevelPrivileged {
		return Pin{}
	}
	if serverErr != nil {
		return Pin{Unknown: fmt.Sprintf("the API server's version could not be read (%v)", serverErr)}
	}
	if !pinned.Older(server) {
		return Pin{} // the API server evaluates a pin at or past its own release at its latest
	}
	known := newestCheck(checks)
	against, gap := server, false
	if known.Older(server) {
		against, gap = known, true
	}
	p := Pin{Against: against.String()}
	at, want := checksAt(checks, required, pinned), checksAt(checks, required, against)
	for _, id := range sortedIDs(want) {
		c := want[id].check
		got, ok := at[id]
		if !ok {
			p.Lacks = append(p.Lacks, fmt.Sprintf("%s (since %s)", id, c.Versions[0].MinimumVersion))
			continue
		}
		for _, rev := range c.Versions {
			v := rev.MinimumVersion
			if got.def.Older(v) && !against.Older(v) && !slices.Contains(loosened[id], v) {
				p.Lacks = append(p.Lacks, fmt.Sprintf("%s as revised in %s", id, v))
				break
			}
		}
	}
	if gap && len(p.Lacks) == 0 {
		p.Unknown = fmt.Sprintf("drillbot's Pod Security library knows checks up to %s; the API server runs %s, whose checks added since are unknown to it (update drillbot)", known, server)
	}
	return p
}

// checksAt is, per check the level applies at version v, the check and the
// minimum version of the definition that applies (as the library's
// registry resolves them: a restricted check may override baseline ones).
func checksAt(checks []psapolicy.Check, level psaapi.Level, v psaapi.Version) map[psapolicy.CheckID]resolved {
	out := map[psapolicy.CheckID]resolved{}
	overridden := map[psapolicy.CheckID]bool{}
	for _, c := range checks {
		if psaapi.CompareLevels(c.Level, level) > 0 {
			continue
		}
		i := -1
		for j, rev := range c.Versions {
			if !v.Older(rev.MinimumVersion) {
				i = j
			}
		}
		if i < 0 {
			continue // not defined yet at v
		}
		out[c.ID] = resolved{check: c, def: c.Versions[i].MinimumVersion}
		for _, id := range c.Versions[i].OverrideCheckIDs {
			overridden[id] = true
		}
	}
	for id := range overridden {
		delete(out, id)
	}
	return out
}

type resolved struct {
	check psapolicy.Check
	// def is the minimum version of the definition that applies.
	def psaapi.Version
}

func sortedIDs(m map[psapolicy.CheckID]resolved) []psapolicy.CheckID {
	ids := make([]psapolicy.CheckID, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b psapolicy.CheckID) int { return strings.Compare(string(a), string(b)) })
	return ids
}

// newestCheck is the newest release that added or revised a check: the
// library's latest.
func newestCheck(checks []psapolicy.Check) psaapi.Version {
	newest := psaapi.MajorMinorVersion(1, 0)
	for _, c := range checks {
		if v := c.Versions[len(c.Versions)-1].MinimumVersion; newest.Older(v) {
			newest = v
		}
	}
	return newest
}
