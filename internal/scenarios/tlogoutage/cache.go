package tlogoutage

import (
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Kyverno's image-verification cache, as Kyverno v1.19.1 configures it
// (cmd/internal/flag.go, initImageVerifyCacheFlags; pkg/image/verification/cache):
// a verified image is admitted again from the cache, without verification,
// until TTL after the verification that stored it. Its chart sets neither
// flag: the cache is on, for 60 minutes, unless
// admissionController.container.extraArgs sets them.
const (
	flagCacheEnabled = "imageVerifyCacheEnabled"     // bool, default true
	flagCacheTTL     = "imageVerifyCacheTTLDuration" // default 60m; 0 means the default
	defaultCacheTTL  = 60 * time.Minute
)

// cacheMargin is added to the TTL the probes wait: the cache's expiry runs
// on Kyverno's clock, and the entry is stored at the end of its request.
const cacheMargin = 5 * time.Second

// verifyCache is one container's image-verification cache.
type verifyCache struct {
	on  bool
	ttl time.Duration // when on
}

// cacheSeen is the longest-lived cache among the admission controller's
// pods, and the pod that has it.
type cacheSeen struct {
	verifyCache
	pod string
}

// readCache reads the cache of every pod from its Kyverno container's
// args: what runs (EVIDENCE rule 3), not the chart or the Deployment. A
// pod without a Kyverno container, or with args Kyverno would not start
// with, is an error: whether it caches cannot be told.
func readCache(pods []corev1.Pod) (cacheSeen, error) {
	var worst cacheSeen
	for _, p := range pods {
		found := false
		for _, c := range p.Spec.Containers {
			if !isKyverno(c) {
				continue
			}
			found = true
			args := c.Args
			if len(c.Command) > 0 {
				args = append(append([]string(nil), c.Command[1:]...), c.Args...)
			}
			vc, err := verifyCacheFromArgs(args)
			if err != nil {
				return cacheSeen{}, fmt.Errorf("pod %s, container %s: %w: whether Kyverno caches image verifications cannot be told", p.Name, c.Name, err)
			}
			if vc.on && (!worst.on || vc.ttl > worst.ttl) {
				worst = cacheSeen{verifyCache: vc, pod: p.Name}
			}
		}
		if !found {
			return cacheSeen{}, fmt.Errorf("pod %s runs no Kyverno container (named kyverno, or of an image named kyverno): "+
				"whether it answers verified images from a cache (Kyverno's --imageVerifyCacheEnabled) cannot be told", p.Name)
		}
	}
	return worst, nil
}

// isKyverno: the chart's admission container is named kyverno and runs
// .../kyverno/kyverno.
func isKyverno(c corev1.Container) bool {
	ref := c.Image
	if i := strings.Index(ref, "@"); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		ref = ref[:i]
	}
	return c.Name == "kyverno" || path.Base(ref) == "kyverno"
}

// kyvernoValueFlags are the flags of Kyverno's cmd/internal/flag.go that
// take a value (not bools): given bare, the next arg is their value.
var kyvernoValueFlags = map[string]bool{
	"loggingFormat": true, "profilePort": true, "profileAddress": true, "tracingPort": true, "tracingAddress": true,
	"tracingCreds": true, "otelConfig": true, "otelCollector": true, "transportCreds": true, "metricsPort": true,
	"kubeconfig": true, "clientRateLimitQPS": true, "clientRateLimitBurst": true, "exceptionNamespace": true,
	"imageSignatureRepository": true, "tufMirror": true, "tufRoot": true, "imagePullSecrets": true,
	"registryCredentialHelpers": true, "imageVerifyCacheMaxSize": true, "leaderElectionRetryPeriod": true,
	// klog's
	"v": true, "vmodule": true, "log_dir": true, "log_file": true, "log_file_max_size": true, "stderrthreshold": true,
}

// verifyCacheFromArgs parses the two flags as Go's flag package does
// (Kyverno's): one or two dashes, "=value" or (not for a bool) the next
// arg, the last occurrence wins, parsing stops at "--" or the first
// non-flag. A bare flag that takes a value (kyvernoValueFlags) is given
// the next arg; a bare bool stops parsing at a non-flag after it. For a
// bare flag not known to take a value, followed by a non-flag, either may
// be true: the longer-lived cache of the two readings is taken (a cache
// read as off must be off). A TTL of 0 is Kyverno's default; a negative
// one stores nothing (ristretto's SetWithTTL).
func verifyCacheFromArgs(args []string) (verifyCache, error) {
	return parseCacheArgs(args, verifyCache{on: true, ttl: defaultCacheTTL})
}

func parseCacheArgs(args []string, c verifyCache) (verifyCache, error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if len(a) < 2 || a[0] != '-' || a == "--" {
			break
		}
		name := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		if name == "" || name[0] == '-' || name[0] == '=' {
			return verifyCache{}, fmt.Errorf("bad flag syntax: %s", a)
		}
		name, value, hasValue := strings.Cut(name, "=")
		switch name {
		case flagCacheEnabled:
			on := true
			if hasValue {
				b, err := strconv.ParseBool(value)
				if err != nil {
					return verifyCache{}, fmt.Errorf("--%s=%s: %w", flagCacheEnabled, value, err)
				}
				on = b
			}
			c.on = on
		case flagCacheTTL:
			if !hasValue {
				if i+1 >= len(args) {
					return verifyCache{}, fmt.Errorf("--%s: %w", flagCacheTTL, errors.New("no value"))
				}
				i++
				value = args[i]
			}
			d, err := time.ParseDuration(value)
			if err != nil {
				return verifyCache{}, fmt.Errorf("--%s=%s: %w", flagCacheTTL, value, err)
			}
			if d == 0 {
				d = defaultCacheTTL
			}
			c.ttl = d
		default:
			if hasValue || i+1 >= len(args) || strings.HasPrefix(args[i+1], "-") {
				continue
			}
			if kyvernoValueFlags[name] {
				i++
				continue
			}
			// A bool (parsing stops here) or a flag with a value (it goes
			// on after the next arg): take the longer-lived cache.
			stopped := normalize(c)
			went, err := parseCacheArgs(args[i+2:], c)
			if err != nil {
				return verifyCache{}, err
			}
			return longerLived(stopped, went), nil
		}
	}
	return normalize(c), nil
}

func normalize(c verifyCache) verifyCache {
	if c.ttl < 0 {
		c.on = false
	}
	return c
}

// longerLived is the cache of a and b that keeps answers longer.
func longerLived(a, b verifyCache) verifyCache {
	switch {
	case !b.on:
		return a
	case !a.on || b.ttl > a.ttl:
		return b
	}
	return a
}
