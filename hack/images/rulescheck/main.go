// Command rulescheck stands in for Falco where Falco cannot run (it needs a
// kernel driver): it loads a Falco rules file as Falco does at start and on
// every change of the file (Falco's watch_config_files), and exits non-zero
// on rules it cannot load, so a DaemonSet of it goes into CrashLoopBackOff
// on bad rules exactly as Falco's does, with the kubelet counting the
// restarts. While the rules load it answers /healthz on :8765, Falco's
// web server port.
//
//	rulescheck /etc/falco/falco_rules.yaml
package main

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"sigs.k8s.io/yaml"
)

// itemKeys are the top-level item kinds of a Falco rules file.
var itemKeys = []string{"rule", "macro", "list", "required_engine_version", "required_plugin_versions"}

// load checks a rules file as Falco's loader does at its first stage: a
// YAML sequence of mappings, each one item of a known kind, and a rule
// with a condition, output and priority (or an append/override).
func load(data []byte) error {
	var items []map[string]any
	if err := yaml.UnmarshalStrict(data, &items); err != nil {
		return fmt.Errorf("LOAD_ERR_YAML_PARSE: %w", err)
	}
	for i, it := range items {
		kind := ""
		for _, k := range itemKeys {
			if _, ok := it[k]; ok {
				kind = k
			}
		}
		if kind == "" {
			return fmt.Errorf("LOAD_ERR_VALIDATE: item %d: unknown top level item", i)
		}
		if kind != "rule" || it["append"] != nil || it["override"] != nil {
			continue
		}
		for _, k := range []string{"condition", "output", "priority"} {
			if s, _ := it[k].(string); s == "" {
				return fmt.Errorf("LOAD_ERR_VALIDATE: rule %v: item has no mapping for key '%s'", it["rule"], k)
			}
		}
	}
	return nil
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: rulescheck RULES_FILE")
		os.Exit(64)
	}
	file := os.Args[1]
	loaded, err := os.ReadFile(file)
	if err == nil {
		err = load(loaded)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "Error: could not load rules file %s: %v\n", file, err)
		os.Exit(1)
	}
	fmt.Printf("Loading rules from file %s: Ok\n", file)
	go func() {
		mux := http.NewServeMux()
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, `{"status": "ok"}`) })
		srv := &http.Server{Addr: ":8765", Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(os.Stderr, "Error:", err)
			os.Exit(1)
		}
	}()
	// The kubelet swaps a ConfigMap volume's files atomically; Falco
	// restarts itself on a change and loads the new rules.
	for range time.Tick(time.Second) {
		data, err := os.ReadFile(file)
		if err != nil || bytes.Equal(data, loaded) {
			continue
		}
		if err := load(data); err != nil {
			fmt.Fprintf(os.Stderr, "Error: rules file %s changed and could not be loaded: %v\n", file, err)
			os.Exit(1)
		}
		loaded = data
		fmt.Printf("Rules file %s changed: reloaded\n", file)
	}
}
