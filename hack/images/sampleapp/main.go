// Command sampleapp is the workload the local cluster's real node runs for
// the demo and the end-to-end drills: an HTTP server with a readiness
// endpoint, so "Ready" means a process really started and answered.
//
// With RECORDS set to a file on a volume it is also a stateful app: every
// second it appends a record (sequence number, time, and a SHA-256 chained
// over every record before it) and syncs it, and serves the newest record,
// the count and the chain's head at /newest (with ?before=<RFC 3339>, of
// the records at or before that time: a drill's spec.verify.http
// contract). "sampleapp check FILE" is its
// data check, run by a drill's spec.verify job after a restore: it verifies
// the chain, exits 1 when the file is missing, empty or broken, and prints
// "drillbot-newest: <time>", the newest record written before
// DRILLBOT_DISASTER_TIME. "sampleapp sum FILE SHA256" checks a file's
// bytes against their SHA-256 (the benchmark's data check: it reads every
// restored byte).
package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) == 3 && os.Args[1] == "check" {
		os.Exit(check(os.Args[2], os.Getenv("DRILLBOT_DISASTER_TIME")))
	}
	if len(os.Args) == 4 && os.Args[1] == "sum" {
		os.Exit(sum(os.Args[2], os.Args[3]))
	}
	addr := ":8080"
	if p := os.Getenv("PORT"); p != "" {
		addr = ":" + p
	}
	host, _ := os.Hostname()
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintf(w, "hello from %s\n", host) })
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if path := os.Getenv("RECORDS"); path != "" {
		w, err := openRecords(path)
		if err != nil {
			log.Fatal(err)
		}
		mux.HandleFunc("/newest", w.serveNewest)
		go w.run(ctx, time.Second)
	}
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		log.Fatal(err)
	}
}

// record is one line of the records file: "seq time chain".
type record struct {
	seq   int
	at    time.Time
	chain string // hex SHA-256 of the previous chain, seq and time
}

func (r record) line() string {
	return fmt.Sprintf("%d %s %s\n", r.seq, r.at.UTC().Format(time.RFC3339Nano), r.chain)
}

func next(prev record, at time.Time) record {
	r := record{seq: prev.seq + 1, at: at}
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s %d %s", prev.chain, r.seq, at.UTC().Format(time.RFC3339Nano))))
	r.chain = hex.EncodeToString(sum[:])
	return r
}

// genesis is the chain before the first record.
var genesis = record{chain: strings.Repeat("0", 64)}

// readRecords reads and verifies the records file. A last line without its
// newline was being written when the file was copied: not durable, left
// out (torn reports it). A record that does not follow its predecessor is
// an error naming it.
func readRecords(path string) (recs []record, torn bool, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, false, err
	}
	text := string(data)
	if i := strings.LastIndexByte(text, '\n'); i != len(text)-1 {
		torn = true
		text = text[:i+1]
	}
	prev := genesis
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) != 3 {
			return recs, torn, fmt.Errorf("line %d: %q is not a record", n, sc.Text())
		}
		seq, err1 := strconv.Atoi(f[0])
		at, err2 := time.Parse(time.RFC3339Nano, f[1])
		if err := errors.Join(err1, err2); err != nil {
			return recs, torn, fmt.Errorf("line %d: %w", n, err)
		}
		want := next(prev, at)
		if seq != want.seq || f[2] != want.chain {
			return recs, torn, fmt.Errorf("line %d: record %d does not follow record %d (sequence or checksum differs)", n, seq, prev.seq)
		}
		recs = append(recs, want)
		prev = want
	}
	return recs, torn, sc.Err()
}

// writer appends a record every interval.
type writer struct {
	mu   sync.Mutex
	f    *os.File
	last record
	n    int
	recs []record // every record, for answers as of a time
}

func openRecords(path string) (*writer, error) {
	recs, torn, err := readRecords(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("records %s: %w", path, err)
	}
	w := &writer{last: genesis, recs: recs}
	if len(recs) > 0 {
		w.last, w.n = recs[len(recs)-1], len(recs)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if torn { // drop the torn line before appending
		size := int64(0)
		for _, r := range recs {
			size += int64(len(r.line()))
		}
		if err := f.Truncate(size); err != nil {
			return nil, err
		}
	}
	if _, err := f.Seek(0, 2); err != nil {
		return nil, err
	}
	w.f = f
	log.Printf("records %s: %d records, continuing after %d", path, w.n, w.last.seq)
	return w, nil
}

func (w *writer) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			w.mu.Lock()
			r := next(w.last, now)
			_, err := w.f.WriteString(r.line())
			if err == nil {
				err = w.f.Sync()
			}
			if err == nil {
				w.last, w.n = r, w.n+1
				w.recs = append(w.recs, r)
			}
			w.mu.Unlock()
			if err != nil {
				log.Printf("write record: %v", err)
			}
		}
	}
}

// serveNewest answers the newest durable record, the count and the
// chain's head; with ?before=<RFC 3339>, of the records at or before it.
func (w *writer) serveNewest(rw http.ResponseWriter, r *http.Request) {
	w.mu.Lock()
	last, n := w.last, w.n
	if b := r.URL.Query().Get("before"); b != "" {
		t, err := time.Parse(time.RFC3339Nano, b)
		if err != nil {
			w.mu.Unlock()
			http.Error(rw, "before: "+err.Error(), http.StatusBadRequest)
			return
		}
		n = sort.Search(len(w.recs), func(i int) bool { return w.recs[i].at.After(t) })
		last = genesis
		if n > 0 {
			last = w.recs[n-1]
		}
	}
	w.mu.Unlock()
	var newest *time.Time
	if n > 0 {
		newest = &last.at
	}
	rw.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(rw).Encode(map[string]any{"newest": newest, "count": n, "checksum": last.chain})
}

// check is the data check: 0 when the records are there and intact.
func check(path, disaster string) int {
	recs, torn, err := readRecords(path)
	if err != nil {
		fmt.Printf("records %s: %v\n", path, err)
		return 1
	}
	if len(recs) == 0 {
		fmt.Printf("records %s: no record\n", path)
		return 1
	}
	if torn {
		fmt.Println("the last line was torn (being written when copied): not counted")
	}
	newest := recs[len(recs)-1]
	if disaster != "" {
		d, err := time.Parse(time.RFC3339Nano, disaster)
		if err != nil {
			fmt.Printf("DRILLBOT_DISASTER_TIME %q: %v\n", disaster, err)
			return 2
		}
		i := len(recs) - 1
		for i >= 0 && recs[i].at.After(d) {
			i--
		}
		if i < 0 {
			fmt.Println("every record is newer than the disaster: none was restored")
			return 1
		}
		newest = recs[i]
	}
	fmt.Printf("%d records, chain intact up to record %d (%s)\n", len(recs), recs[len(recs)-1].seq, recs[len(recs)-1].chain[:12])
	fmt.Printf("drillbot-newest: %s\n", newest.at.UTC().Format(time.RFC3339Nano))
	return 0
}

// sum is 0 when the file's SHA-256 is want.
func sum(path, want string) int {
	f, err := os.Open(path)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	got := hex.EncodeToString(h.Sum(nil))
	fmt.Printf("%s: %d bytes, sha256 %s\n", path, n, got)
	if got != want {
		fmt.Printf("want sha256 %s\n", want)
		return 1
	}
	return 0
}
