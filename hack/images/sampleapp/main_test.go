package main

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeRecords(t *testing.T, n int, start time.Time) (string, []record) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "records")
	var b strings.Builder
	var recs []record
	prev := genesis
	for i := range n {
		r := next(prev, start.Add(time.Duration(i)*time.Second))
		b.WriteString(r.line())
		recs, prev = append(recs, r), r
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, recs
}

func TestCheck(t *testing.T) {
	start := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name     string
		edit     func(string) string
		disaster string
		want     int
	}{
		{name: "intact", edit: func(s string) string { return s }, want: 0},
		{name: "a torn last line is not counted", edit: func(s string) string { return s + "11 2026-12-05T12:00:10Z ab" }, want: 0},
		{name: "a record changed", edit: func(s string) string { return strings.Replace(s, "12:00:03Z", "12:00:04Z", 1) }, want: 1},
		{name: "a record removed", edit: func(s string) string {
			l := strings.SplitAfter(s, "\n")
			return strings.Join(append(l[:4:4], l[5:]...), "")
		}, want: 1},
		{name: "empty", edit: func(string) string { return "" }, want: 1},
		{name: "all newer than the disaster", edit: func(s string) string { return s }, disaster: "2026-12-05T11:00:00Z", want: 1},
		{name: "bad disaster time", edit: func(s string) string { return s }, disaster: "noon", want: 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path, _ := writeRecords(t, 10, start)
			data, _ := os.ReadFile(path)
			if err := os.WriteFile(path, []byte(tc.edit(string(data))), 0o644); err != nil {
				t.Fatal(err)
			}
			if got := check(path, tc.disaster); got != tc.want {
				t.Errorf("check = %d, want %d", got, tc.want)
			}
		})
	}
	if got := check(filepath.Join(t.TempDir(), "none"), ""); got != 1 {
		t.Errorf("missing file: check = %d, want 1", got)
	}
}

// The newest record before the disaster, and the writer continuing a
// restored file after its torn line.
func TestNewestBeforeTheDisasterAndContinue(t *testing.T) {
	start := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	path, recs := writeRecords(t, 10, start)
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	_, _ = f.WriteString("11 2026-12")
	_ = f.Close()
	w, err := openRecords(path)
	if err != nil || w.last != recs[9] || w.n != 10 {
		t.Fatalf("openRecords: last %+v n %d (%v), want record 10", w.last, w.n, err)
	}
	r := next(w.last, start.Add(time.Hour))
	_, _ = w.f.WriteString(r.line())
	got, torn, err := readRecords(path)
	if err != nil || torn || len(got) != 11 {
		t.Fatalf("after continuing: %d records, torn %v, %v", len(got), torn, err)
	}
	if c := check(path, start.Add(5500*time.Millisecond).Format(time.RFC3339Nano)); c != 0 {
		t.Errorf("check = %d", c)
	}
}

func TestSum(t *testing.T) {
	path := filepath.Join(t.TempDir(), "blob")
	if err := os.WriteFile(path, []byte("orders"), 0o644); err != nil {
		t.Fatal(err)
	}
	if sum(path, strings.Repeat("0", 64)) != 1 {
		t.Error("a wrong checksum passed")
	}
	h := sha256.Sum256([]byte("orders"))
	if sum(path, hex.EncodeToString(h[:])) != 0 {
		t.Error("the right checksum failed")
	}
	if sum(filepath.Join(t.TempDir(), "none"), hex.EncodeToString(h[:])) != 1 {
		t.Error("a missing file passed")
	}
}

// /newest as of a time: the records at or before it (a drill's
// spec.verify.http contract), none before the first.
func TestServeNewestBefore(t *testing.T) {
	start := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	path, recs := writeRecords(t, 10, start)
	w, err := openRecords(path)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ query, want string }{
		{"", `{"checksum":"` + recs[9].chain + `","count":10,"newest":"2026-12-05T12:00:09Z"}`},
		{"?before=2026-12-05T12:00:04.5Z", `{"checksum":"` + recs[4].chain + `","count":5,"newest":"2026-12-05T12:00:04Z"}`},
		{"?before=2026-12-05T12:00:04Z", `{"checksum":"` + recs[4].chain + `","count":5,"newest":"2026-12-05T12:00:04Z"}`},
		{"?before=2026-12-05T11:00:00Z", `{"checksum":"` + genesis.chain + `","count":0,"newest":null}`},
		{"?before=noon", "before: "},
	}
	for _, tc := range cases {
		rec := httptest.NewRecorder()
		w.serveNewest(rec, httptest.NewRequest("GET", "/newest"+tc.query, nil))
		if got := strings.TrimSpace(rec.Body.String()); !strings.HasPrefix(got, tc.want) {
			t.Errorf("%s: %s, want %s", tc.query, got, tc.want)
		}
	}
}
