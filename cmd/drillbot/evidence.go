package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/engine"
	"github.com/drillbot-io/drillbot/internal/evidence"
	"github.com/drillbot-io/drillbot/internal/kube"
	"github.com/drillbot-io/drillbot/internal/report"
	"github.com/drillbot-io/drillbot/internal/scenarios"
)

// archiveFlags configure the daemon's archive (serve --archive).
type archiveFlags struct {
	url, key, cluster string
	retention, every  time.Duration
}

func (a *archiveFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&a.url, "archive", envOr("DRILLBOT_ARCHIVE", ""), "write every finished run, signed, to this archive: s3://BUCKET[/PREFIX][?endpoint=URL&region=R] (credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)")
	fs.StringVar(&a.key, "archive-key", envOr("DRILLBOT_ARCHIVE_KEY", ""), "PEM private key that signs the archive's records (drillbot evidence keygen; from a Secret)")
	fs.StringVar(&a.cluster, "cluster-name", envOr("DRILLBOT_CLUSTER_NAME", ""), "this cluster's name in the archive (required with --archive)")
	fs.DurationVar(&a.retention, "archive-retention", 400*24*time.Hour, "how long each record is retained under the bucket's Object Lock (where the bucket has it)")
	fs.DurationVar(&a.every, "archive-interval", 30*time.Second, "how often runs not archived yet are written (also right after each run); a failed write is retried after it, doubling up to 10m")
}

// open checks the flags and builds the archiver: a bad URL, key or name
// refuses to start (nothing is written), an unreachable store does not
// (its writes are retried, run by run, and visible).
func (a *archiveFlags) open(ctx context.Context, kube kubernetes.Interface, runs evidence.Runs, log *slog.Logger) (*evidence.Archiver, error) {
	if a.url == "" {
		if a.key != "" {
			return nil, errors.New("--archive-key without --archive")
		}
		return nil, nil
	}
	if a.key == "" {
		return nil, errors.New("--archive needs --archive-key: records are signed")
	}
	if a.cluster == "" {
		return nil, errors.New("--archive needs --cluster-name: records name their cluster")
	}
	if !clusterName.MatchString(a.cluster) {
		return nil, fmt.Errorf("--cluster-name %q: letters, digits, '.', '_' and '-' only (it is a folder of the archive)", a.cluster)
	}
	store, err := openArchive(ctx, a.url)
	if err != nil {
		return nil, err
	}
	signer, err := evidence.LoadSigner(a.key, []byte(os.Getenv("DRILLBOT_ARCHIVE_KEY_PASSWORD")))
	if err != nil {
		return nil, err
	}
	ks, err := kube.CoreV1().Namespaces().Get(ctx, "kube-system", metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("cluster identity (namespace kube-system's UID): %w", err)
	}
	reg := scenarios.Registry(scenarios.Deps{})
	return &evidence.Archiver{
		Runs: runs, Cluster: evidence.Cluster{Name: a.cluster, UID: string(ks.UID)},
		Chain:    &evidence.Chain{Store: store, Signer: signer, Retention: a.retention},
		Classify: reg.Evidence, Page: report.RunPage, Logger: log, Backoff: a.every, Zone: localZone(),
	}, nil
}

// localZone names the zone the scheduler computes a schedule without
// CRON_TZ in (the process's local zone): TZ, else the zone /etc/localtime
// links to, else UTC when there is none. A zone it cannot name is
// recorded as such, and verify then says it cannot check the slots.
func localZone() string {
	if tz, ok := os.LookupEnv("TZ"); ok {
		if tz = strings.TrimPrefix(tz, ":"); tz == "" {
			return "UTC"
		}
		return tz
	}
	if target, err := os.Readlink("/etc/localtime"); err == nil {
		if _, name, ok := strings.Cut(target, "zoneinfo/"); ok {
			return name
		}
	}
	name, offset := time.Now().Zone()
	if offset == 0 && (name == "UTC" || name == "GMT") {
		return "UTC"
	}
	return fmt.Sprintf("unnamed local zone %s (offset %+ds)", name, offset)
}

// clusterName is what a cluster may be called in the archive's keys.
var clusterName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// openArchive opens an s3:// archive with the AWS_* credentials.
func openArchive(ctx context.Context, url string) (*evidence.S3Store, error) {
	return evidence.OpenS3(ctx, url, evidence.S3Options{AccessKey: os.Getenv("AWS_ACCESS_KEY_ID"),
		SecretKey: os.Getenv("AWS_SECRET_ACCESS_KEY"), SessionToken: os.Getenv("AWS_SESSION_TOKEN")})
}

// archiveLoop archives finished runs every interval and whenever kick
// says a run finished, until ctx ends.
func archiveLoop(ctx context.Context, a *evidence.Archiver, every time.Duration, kick <-chan struct{}, pending func(int), log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		n, err := a.Pass(ctx)
		if err != nil && ctx.Err() == nil {
			log.Warn("archive pass failed", "err", err)
		}
		pending(n)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-kick:
		}
	}
}

// kicker is an engine.Observer that signals when a run finishes.
type kicker chan struct{}

func (k kicker) Observe(_ context.Context, ev engine.Event) {
	if ev.Type == engine.EventFinished || ev.Type == engine.EventRevertRetried {
		select {
		case k <- struct{}{}:
		default:
		}
	}
}

func newEvidenceCmd(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "evidence",
		Short: "the archive of signed run records: keygen, verify, annotate",
		Long: `drillbot serve --archive writes every finished run (held runs too) once to an
object store outside the cluster, signed with drillbot's key and chained per
drill. These commands make the key, check the archive, and add remediation
notes to a run's findings as records of their own.`,
	}
	cmd.AddCommand(newKeygenCmd(stdout, stderr), newVerifyCmd(stdout, stderr), newAnnotateCmd(stdout, stderr))
	return cmd
}

func newKeygenCmd(stdout, stderr io.Writer) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:     "keygen --out DIR",
		Short:   "make a signing key pair: DIR/drillbot-evidence.key (keep it in a Secret) and .pub (give it to auditors)",
		Example: "  drillbot evidence keygen --out keys/\n  kubectl -n drillbot-system create secret generic drillbot-evidence-key --from-file=key=keys/drillbot-evidence.key",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			priv, pub, err := evidence.GenerateKey()
			if err == nil {
				err = os.MkdirAll(dir, 0o700)
			}
			privPath, pubPath := filepath.Join(dir, "drillbot-evidence.key"), filepath.Join(dir, "drillbot-evidence.pub")
			for _, f := range []struct {
				path string
				data []byte
				mode os.FileMode
			}{{privPath, priv, 0o600}, {pubPath, pub, 0o644}} {
				if err == nil {
					if _, serr := os.Stat(f.path); serr == nil {
						err = fmt.Errorf("%s exists: not overwritten", f.path)
					} else {
						err = os.WriteFile(f.path, f.data, f.mode)
					}
				}
			}
			if err != nil {
				fmt.Fprintf(stderr, "drillbot evidence keygen: %v\n", err)
				return code(exitError)
			}
			fmt.Fprintf(stdout, "private key %s\npublic key  %s\n", privPath, pubPath)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "out", ".", "folder to write the key pair into")
	return cmd
}

// trustFlags are the archive and the public keys a reader trusts.
type trustFlags struct {
	url        string
	keys       []string
	annotators []string
}

func (t *trustFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&t.url, "archive", envOr("DRILLBOT_ARCHIVE", ""), "the archive: s3://BUCKET[/PREFIX][?endpoint=URL&region=R] (credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)")
	fs.StringArrayVar(&t.keys, "public-key", nil, "drillbot's PEM public key: the run records it signs are trusted (repeatable, e.g. across a key rotation)")
	fs.StringArrayVar(&t.annotators, "annotator-key", nil, "a person's PEM public key: the annotations it signs are trusted, run records never (repeatable)")
}

func (t *trustFlags) open(ctx context.Context) (*evidence.S3Store, *evidence.Keyring, error) {
	if t.url == "" || len(t.keys) == 0 {
		return nil, nil, errors.New("--archive and --public-key are required")
	}
	k, err := evidence.LoadKeyring(t.keys...)
	if err == nil {
		err = k.Load(evidence.RoleAnnotator, t.annotators...)
	}
	if err != nil {
		return nil, nil, err
	}
	s, err := openArchive(ctx, t.url)
	return s, k, err
}

func newVerifyCmd(stdout, stderr io.Writer) *cobra.Command {
	var (
		tf       trustFlags
		cf       clusterFlags
		days     int
		from, to string
		output   string
	)
	cmd := &cobra.Command{
		Use:   "verify --archive URL --public-key FILE",
		Short: "check every record's signature and chain, and every scheduled slot of a period",
		Long: `Reads every record of the archive and checks: its signature against the trusted
public keys, each for what it may sign (--public-key: drillbot's, run records;
--annotator-key: annotations only); its fields against the DrillRun it holds;
its place in its drill's chain (a place with no record was deleted); that it
chains to the record before it (a replaced record breaks the link); that no
run has two records and no chain two clusters; that each chain's newest
index (what the report reads) lists the records the archive holds; and that
each scheduled drill
has a run record for every slot of the period (--days, or --from/--to), in
the zone the daemon scheduled in: a slot without one is a gap, named. With
--kubeconfig, every place the cluster's DrillRuns say they wrote must hold
the record of their digest, so a deleted or replaced newest record is found
too. An archive where nothing verifies is a problem. Exit code 1 on any
problem.`,
		Example: `  drillbot evidence verify --archive s3://dr-evidence/prod --public-key drillbot-evidence.pub --days 365`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(cmd, output, "table", "json"); err != nil {
				return err
			}
			opts, err := period(days, from, to, time.Now())
			if err != nil {
				return usageError{cmd, err}
			}
			return code(verifyArchive(cmd.Context(), tf, cf, cmd.Flags().Changed("kubeconfig") || cmd.Flags().Changed("context"), opts, output, stdout, stderr))
		},
	}
	tf.register(cmd.Flags())
	cf.register(cmd.Flags())
	cmd.Flags().IntVar(&days, "days", 0, "check the scheduled slots of the last N days")
	cmd.Flags().StringVar(&from, "from", "", "start of the period (RFC 3339 or YYYY-MM-DD)")
	cmd.Flags().StringVar(&to, "to", "", "end of the period (default now)")
	outputFlag(cmd, &output, "table", "json")
	return cmd
}

// period is the slots' period from --days or --from/--to.
func period(days int, from, to string, now time.Time) (evidence.VerifyOptions, error) {
	parse := func(s string) (time.Time, error) {
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			return t, nil
		}
		return time.Parse("2006-01-02", s)
	}
	var o evidence.VerifyOptions
	o.To = now
	if to != "" {
		t, err := parse(to)
		if err != nil {
			return o, fmt.Errorf("--to: %w", err)
		}
		o.To = t
	}
	switch {
	case days > 0 && from != "":
		return o, errors.New("--days or --from, not both")
	case days > 0:
		o.From = o.To.Add(-time.Duration(days) * 24 * time.Hour)
	case from != "":
		t, err := parse(from)
		if err != nil {
			return o, fmt.Errorf("--from: %w", err)
		}
		o.From = t
	}
	return o, nil
}

func verifyArchive(ctx context.Context, tf trustFlags, cf clusterFlags, withCluster bool, opts evidence.VerifyOptions, output string, stdout, stderr io.Writer) int {
	store, keys, err := tf.open(ctx)
	if err == nil && withCluster {
		opts.Written, err = clusterWritten(ctx, cf)
	}
	if err == nil {
		_, err = store.ObjectLock(ctx) // the report says what the bucket guarantees
	}
	var v evidence.Verified
	if err == nil {
		v, err = evidence.Verify(ctx, store, evidence.Layout{}, keys, opts)
	}
	if err != nil {
		fmt.Fprintf(stderr, "drillbot evidence verify: %v\n", err)
		return exitError
	}
	if output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(v)
	} else {
		printVerified(stdout, v, opts)
	}
	if v.Problems > 0 {
		return exitFail
	}
	return 0
}

func printVerified(w io.Writer, v evidence.Verified, o evidence.VerifyOptions) {
	fmt.Fprintf(w, "archive %s\n", v.Store)
	if !o.From.IsZero() {
		fmt.Fprintf(w, "scheduled slots checked from %s to %s\n", o.From.UTC().Format(time.RFC3339), o.To.UTC().Format(time.RFC3339))
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLUSTER\tDRILL\tRECORDS\tRUNS\tANNOTATIONS\tKEYS\tPROBLEMS\tGAPS")
	for _, c := range v.Chains {
		var keys []string
		for k, n := range c.Keys {
			keys = append(keys, fmt.Sprintf("%s:%d", k, n))
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%d\t%d\n", c.Cluster, c.Drill, c.Records, c.Runs, c.Annotations, strings.Join(keys, ","), len(c.Problems), len(c.Gaps))
	}
	_ = tw.Flush()
	for _, p := range v.ArchiveProblems {
		fmt.Fprintf(w, "PROBLEM %s\n", p)
	}
	for _, n := range v.Notes {
		fmt.Fprintf(w, "NOTE    %s\n", n)
	}
	for _, c := range v.Chains {
		for _, p := range c.Problems {
			fmt.Fprintf(w, "PROBLEM %s/%s: %s\n", c.Cluster, c.Drill, p)
		}
		for _, g := range c.Gaps {
			fmt.Fprintf(w, "GAP     %s/%s: no run record for the scheduled slot %s\n", c.Cluster, c.Drill, g.Format(time.RFC3339))
		}
		for _, g := range c.Pending {
			fmt.Fprintf(w, "PENDING %s/%s: the slot %s is too recent at the period's end to judge\n", c.Cluster, c.Drill, g.Format(time.RFC3339))
		}
	}
	switch {
	case v.Problems == 0 && o.From.IsZero():
		fmt.Fprintln(w, "every record verified; scheduled slots not checked (no period: --days, or --from/--to)")
	case v.Problems == 0:
		fmt.Fprintln(w, "every record verified; no gap")
	default:
		fmt.Fprintf(w, "%d problems\n", v.Problems)
	}
}

// clusterWritten reads, from the cluster's DrillRuns, every place a run
// says it took in the archive and the digest of what it wrote there.
func clusterWritten(ctx context.Context, cf clusterFlags) ([]evidence.Written, error) {
	s, err := runStore(cf)
	if err != nil {
		return nil, err
	}
	runs, err := s.List(ctx, "")
	if err != nil {
		return nil, err
	}
	var out []evidence.Written
	for _, r := range runs {
		if a := r.Status.Archive; r.Status.Archived() {
			if cluster, drill, seq, ok := (evidence.Layout{}).Parse(a.Object); ok {
				out = append(out, evidence.Written{Chain: cluster + "/" + drill, Seq: seq, Digest: a.Digest, Run: r.Name})
			}
		}
	}
	return out, nil
}

func newAnnotateCmd(stdout, stderr io.Writer) *cobra.Command {
	var (
		tf                           trustFlags
		cf                           clusterFlags
		key, cluster, drillName, run string
		a                            evidence.Annotation
		retention                    time.Duration
	)
	cmd := &cobra.Command{
		Use:   "annotate --cluster C --drill D --run R --finding N --owner O [--due DATE]",
		Short: "add a remediation note (owner, due date) to a run's finding, as a signed record of its own",
		Long: `Adds an annotation to one finding of an archived run: who owns the remediation
and by when. It is a new record in the drill's chain, signed with your key
(--key); the run's record is never changed. --finding counts from 1, as the
report shows findings. With a kubeconfig, the annotation names you as the API
server does (a SelfSubjectReview).`,
		Example: `  drillbot evidence annotate --archive s3://dr-evidence/prod --public-key drillbot-evidence.pub \
    --key me.key --cluster prod-eu --drill namespace-restore --run namespace-restore-20261201-020000-abcd \
    --finding 1 --owner platform-team --due 2027-01-15`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if key == "" || cluster == "" || drillName == "" || run == "" || a.Owner == "" || a.Finding < 1 {
				return usageError{cmd, errors.New("--key, --cluster, --drill, --run, --owner and --finding (from 1) are required")}
			}
			a.Finding--
			if cmd.Flags().Changed("kubeconfig") || cmd.Flags().Changed("context") {
				who, err := whoAmI(cmd.Context(), cf)
				if err != nil {
					fmt.Fprintf(stderr, "drillbot evidence annotate: %v\n", err)
					return code(exitError)
				}
				a.By = who.User
			}
			return code(annotate(cmd.Context(), tf, key, cluster, drillName, run, a, retention, stdout, stderr))
		},
	}
	tf.register(cmd.Flags())
	cf.register(cmd.Flags())
	fs := cmd.Flags()
	fs.StringVar(&key, "key", "", "your PEM private key (drillbot evidence keygen): signs the annotation")
	fs.StringVar(&cluster, "cluster", "", "the run's cluster, as the archive names it")
	fs.StringVar(&drillName, "drill", "", "the run's drill")
	fs.StringVar(&run, "run", "", "the run: its DrillRun name or id")
	fs.IntVar(&a.Finding, "finding", 0, "the finding, counted from 1")
	fs.StringVar(&a.Owner, "owner", "", "who owns the remediation")
	fs.StringVar(&a.Due, "due", "", "when it is due (YYYY-MM-DD)")
	fs.StringVar(&a.Note, "note", "", "what is to be done")
	fs.DurationVar(&retention, "retention", 400*24*time.Hour, "how long the annotation is retained under the bucket's Object Lock (where the bucket has it)")
	return cmd
}

func annotate(ctx context.Context, tf trustFlags, key, cluster, drillName, run string, a evidence.Annotation, retention time.Duration, stdout, stderr io.Writer) int {
	if a.Due != "" {
		if _, err := time.Parse("2006-01-02", a.Due); err != nil {
			fmt.Fprintf(stderr, "drillbot evidence annotate: --due %q: want YYYY-MM-DD\n", a.Due)
			return exitUsage
		}
	}
	store, keys, err := tf.open(ctx)
	var signer *evidence.Signer
	if err == nil {
		signer, err = evidence.LoadSigner(key, nil)
	}
	var app evidence.Appended
	if err == nil {
		app, err = evidence.Annotate(ctx, &evidence.Chain{Store: store, Signer: signer, Retention: retention}, keys, cluster, drillName, run, a)
	}
	if err != nil {
		fmt.Fprintf(stderr, "drillbot evidence annotate: %v\n", err)
		return exitError
	}
	fmt.Fprintf(stdout, "annotation %s (place %d, %s), signed by key %s\n", app.Key, app.Seq, app.Digest, signer.KeyID())
	return 0
}

// whoAmI asks the API server who the credentials are (a
// SelfSubjectReview): the only answer drillbot records as a person.
func whoAmI(ctx context.Context, cf clusterFlags) (v1alpha1.Initiator, error) {
	c, err := kubeClient(cf)
	if err != nil {
		return v1alpha1.Initiator{}, err
	}
	return selfSubject(ctx, c)
}

func selfSubject(ctx context.Context, c kubernetes.Interface) (v1alpha1.Initiator, error) {
	r, err := c.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return v1alpha1.Initiator{}, fmt.Errorf("who started this run (SelfSubjectReview): %w", err)
	}
	u := r.Status.UserInfo
	if u.Username == "" {
		return v1alpha1.Initiator{}, errors.New("who started this run: the API server's SelfSubjectReview names no user")
	}
	return v1alpha1.Initiator{Kind: v1alpha1.InitiatorUser, User: u.Username, UID: u.UID, Groups: u.Groups}, nil
}

// archiveReport builds the DR status report from the archive's verified
// records instead of the cluster's DrillRuns.
func archiveReport(ctx context.Context, tf trustFlags, defs []report.DrillInfo, last, days int, output string, stdout, stderr io.Writer) int {
	store, keys, err := tf.open(ctx)
	if err == nil {
		_, err = store.ObjectLock(ctx)
	}
	var v evidence.Verified
	if err == nil {
		// Each chain's newest index stands for the records it covers
		// (`evidence verify` checks it against them).
		v, err = evidence.Verify(ctx, store, evidence.Layout{}, keys, evidence.VerifyOptions{UseIndex: true})
	}
	if err != nil {
		fmt.Fprintf(stderr, "drillbot report: %v\n", err)
		return exitError
	}
	runs := v.Runs()
	byCluster := map[string][]v1alpha1.DrillRun{}
	for _, r := range runs {
		c := r.Labels[v1alpha1.LabelCluster]
		byCluster[c] = append(byCluster[c], r)
	}
	now := time.Now()
	if len(byCluster) > 1 {
		// One archive, several clusters: the fleet's report, each
		// cluster's drills its own (the catalog given is no one cluster's).
		if output == "html" {
			fmt.Fprintln(stderr, "drillbot report: the archive holds several clusters: -o html is one cluster's report; the fleet report is table, json or markdown")
			return exitUsage
		}
		var clusters []report.Cluster
		for name, rs := range byCluster {
			rep := report.Build(rs, report.Options{Now: now, WindowDays: days, LastN: last,
				Source: fmt.Sprintf("the archive %s (%d run records of cluster %s verified)", v.Store, len(rs), name)})
			clusters = append(clusters, report.Cluster{Name: name, Report: &rep})
		}
		err = report.WriteFleet(stdout, report.BuildFleet(clusters, now, days), output)
	} else {
		src := fmt.Sprintf("the archive %s (%d run records verified)", v.Store, len(runs))
		err = report.Write(stdout, report.Build(runs, report.Options{Now: now, WindowDays: days, LastN: last, Drills: defs, Source: src}), output)
	}
	if err != nil {
		fmt.Fprintf(stderr, "drillbot report: %v\n", err)
		return exitError
	}
	for _, p := range v.ArchiveProblems {
		fmt.Fprintf(stderr, "drillbot report: archive: %s\n", p)
	}
	if v.Problems > 0 {
		for _, c := range v.Chains {
			for _, p := range c.Problems {
				fmt.Fprintf(stderr, "drillbot report: archive %s/%s: %s (not in the report)\n", c.Cluster, c.Drill, p)
			}
		}
		return exitFail
	}
	return 0
}

// kubeClient is a clientset from the cluster flags.
func kubeClient(cf clusterFlags) (kubernetes.Interface, error) {
	cfg, err := kube.RESTConfig(cf.kubeconfig, cf.context)
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}

// runStore is the cluster's DrillRuns, from the cluster flags.
func runStore(cf clusterFlags) (*engine.KubeStore, error) {
	cfg, err := kube.RESTConfig(cf.kubeconfig, cf.context)
	if err != nil {
		return nil, err
	}
	c, err := kube.NewClients(cfg)
	if err != nil {
		return nil, err
	}
	return &engine.KubeStore{Client: c.Dynamic, Namespace: cf.namespace}, nil
}
