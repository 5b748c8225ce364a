package backupcoverage

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// includesNamespace reports whether a backup spec's namespace lists take ns,
// as Velero decides it (pkg/util/collections.IncludesExcludes.ShouldInclude,
// v1.18): an exclude pattern that matches wins; then an empty include list
// or "*" takes everything, else an include pattern must match. Velero's
// package is not imported: it pulls in controller-runtime, logrus and
// cockroachdb/errors for a dozen lines.
//
// A pattern this cannot read is an error, never a yes or a no.
func includesNamespace(included, excluded []string, ns string) (bool, error) {
	for _, p := range excluded {
		ok, err := globMatch(p, ns)
		if err != nil {
			return false, fmt.Errorf("excluded namespace pattern %q: %w", p, err)
		}
		if ok {
			return false, nil
		}
	}
	if len(included) == 0 || slices.Contains(included, "*") {
		return true, nil
	}
	for _, p := range included {
		ok, err := globMatch(p, ns)
		if err != nil {
			return false, fmt.Errorf("included namespace pattern %q: %w", p, err)
		}
		if ok {
			return true, nil
		}
	}
	return false, nil
}

// globMatch matches name against pattern as github.com/gobwas/glob does
// without separators (Velero compiles namespace patterns with it): * and
// ** any run of characters, ? one, [abc] or [a-z] one of a set or a single
// range, [!...] one not in it, {a,b} alternatives, \ escapes the next
// character. Velero 1.18 refuses !, {, } and ** in a new backup's
// namespaces, but a backup made by an older Velero, or synced, may hold
// them.
func globMatch(pattern, name string) (bool, error) {
	re, err := globRegexp(pattern)
	if err != nil {
		return false, err
	}
	return re.MatchString(name), nil
}

func globRegexp(pattern string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString("^(?s:")
	rs := []rune(pattern)
	depth := 0 // of {...}
	for i := 0; i < len(rs); i++ {
		switch r := rs[i]; {
		case r == '\\':
			if i+1 == len(rs) {
				return nil, errors.New("trailing backslash")
			}
			i++
			b.WriteString(regexp.QuoteMeta(string(rs[i])))
		case r == '*':
			b.WriteString(".*")
			for i+1 < len(rs) && rs[i+1] == '*' {
				i++
			}
		case r == '?':
			b.WriteString(".")
		case r == '[':
			class, n, err := globClass(rs[i+1:])
			if err != nil {
				return nil, err
			}
			b.WriteString(class)
			i += n
		case r == '{':
			depth++
			b.WriteString("(?:")
		case r == ',' && depth > 0:
			b.WriteString("|")
		case r == '}' && depth > 0:
			depth--
			b.WriteString(")")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	if depth > 0 {
		return nil, errors.New("unclosed {")
	}
	b.WriteString(")$")
	return regexp.Compile(b.String())
}

// globClass reads a class after its [: either a set of characters or one
// range, optionally negated by a leading !, then ]. It returns the regexp
// class and how many runes it read (the ] included).
func globClass(rs []rune) (string, int, error) {
	i := 0
	neg := i < len(rs) && rs[i] == '!'
	if neg {
		i++
	}
	var body strings.Builder
	quote := func(r rune) string { return regexp.QuoteMeta(string(r)) }
	switch {
	case i+2 < len(rs) && rs[i+1] == '-':
		body.WriteString(quote(rs[i]) + "-" + quote(rs[i+2]))
		i += 3
	default:
		start := i
		for i < len(rs) && rs[i] != ']' {
			if rs[i] == '\\' {
				i++
				if i == len(rs) {
					return "", 0, errors.New("trailing backslash")
				}
			}
			if rs[i] == '-' {
				body.WriteString(`\-`)
			} else {
				body.WriteString(quote(rs[i]))
			}
			i++
		}
		if i == start {
			return "", 0, errors.New("empty character class")
		}
	}
	if i >= len(rs) || rs[i] != ']' {
		return "", 0, errors.New("character class not closed (a class is a set or a single range)")
	}
	if neg {
		return "[^" + body.String() + "]", i + 1, nil
	}
	return "[" + body.String() + "]", i + 1, nil
}
