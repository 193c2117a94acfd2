package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"hash/maphash"
	"io"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/schollz/progressbar/v3"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/term"

	"github.com/mpaas-push/pushworker/internal/campaign"
	"github.com/mpaas-push/pushworker/internal/loader"
	"github.com/mpaas-push/pushworker/internal/ops"
	"github.com/mpaas-push/pushworker/internal/tracing"
	"github.com/mpaas-push/pushworker/job"
)

// loadFlags are the campaign settings and load options.
type loadFlags struct {
	campaign, settings, format, rejects    string
	api                                    string
	appID, workspaceID, template, taskName string
	deliveryType, expiredSeconds           int64
	groupSize, window, maxTargets          int
	strict, dryRun                         bool
	cpuProfile                             string
	memLimitMiB                            int
}

func loadFlagSet(fs *flag.FlagSet) command {
	lf := &loadFlags{}
	fs.StringVar(&lf.campaign, "campaign", "", "campaign id (starts every job id)")
	fs.StringVar(&lf.settings, "settings", "", "campaign settings, a JSON job without targets")
	fs.StringVar(&lf.format, "format", "", "csv or jsonl (default: from the file name; csv for -)")
	fs.StringVar(&lf.api, "api", "auto", "CSV rows as PushMultiple jobs (multiple: each target its own values, 100 a call), PushTemplate jobs\n"+
		"grouped by identical values (template: 10 a call), or auto: multiple unless the settings need PushTemplate")
	fs.StringVar(&lf.rejects, "rejects", "", "write bad rows (line, reason) to this CSV file")
	fs.StringVar(&lf.appID, "app-id", "", "appId")
	fs.StringVar(&lf.workspaceID, "workspace-id", "", "workspaceId")
	fs.StringVar(&lf.template, "template", "", "templateName")
	fs.StringVar(&lf.taskName, "task-name", "", "taskName (default: the campaign id)")
	fs.Int64Var(&lf.deliveryType, "delivery-type", 0, "deliveryType")
	fs.Int64Var(&lf.expiredSeconds, "expired-seconds", 0, "expiredSeconds")
	fs.IntVar(&lf.groupSize, "group-size", 1000, "targets per job")
	fs.IntVar(&lf.window, "window", 20000, "with PushTemplate: rows held in open groups at most (bounds memory)")
	fs.IntVar(&lf.maxTargets, "max-targets", job.DefaultMaxTargets, "the workers' per-job target cap")
	fs.BoolVar(&lf.strict, "strict", false, "stop at the first bad row")
	fs.BoolVar(&lf.dryRun, "dry-run", false, "validate the whole file, publish nothing (no server needed)")
	fs.StringVar(&lf.cpuProfile, "cpuprofile", "", "write a CPU profile to this file (diagnostics)")
	fs.IntVar(&lf.memLimitMiB, "mem-limit", 80, "soft memory limit in MiB (the Go runtime's GOMEMLIMIT); 0: none")
	wait := fs.Bool("wait", false, "follow the campaign's results and print the totals")
	timeout := fs.Duration("timeout", 2*time.Minute, "with --wait: how long to wait for the results")
	return command{offline: &lf.dryRun, run: func(e *env, args []string) error {
		if len(args) != 1 || lf.campaign == "" {
			return usageError{"want --campaign ID and one FILE (- for standard input)"}
		}
		return e.load(lf, args[0], *wait, *timeout)
	}}
}

// chooseAPI is the mPaaS action of a CSV campaign's jobs. auto takes PushMultiple
// (a hundred targets a call) unless the settings need PushTemplate: an SMS
// fallback or a Live Activity delivery type.
func (lf *loadFlags) chooseAPI(base *job.Job) (api, why string, err error) {
	need := templateOnly(base)
	switch lf.api {
	case "auto":
		if need != "" {
			return job.APITemplate, "auto: " + need, nil
		}
		return job.APIMultiple, "auto", nil
	case "multiple":
		if need != "" {
			return "", "", fmt.Errorf("--api multiple: the campaign settings need PushTemplate (%s)", need)
		}
		return job.APIMultiple, "--api multiple", nil
	case "template":
		return job.APITemplate, "--api template", nil
	}
	return "", "", usageError{fmt.Sprintf("--api %q: auto, template or multiple", lf.api)}
}

// templateOnly names the setting that PushMultiple cannot carry, or "".
func templateOnly(b *job.Job) string {
	switch {
	case b.SmsStrategy != nil && *b.SmsStrategy != 0:
		return "smsStrategy is not 0: PushMultiple has no SMS fallback"
	case b.SmsSignName != "" || b.SmsTemplateCode != "" || len(b.SmsTemplateParam) > 0:
		return "SMS parameters are set: PushMultiple has no SMS fallback"
	case b.DeliveryType == 5 || b.DeliveryType == 6:
		return fmt.Sprintf("deliveryType %d: PushMultiple has no Live Activity targets", b.DeliveryType)
	}
	return ""
}

// campaignBase builds the campaign-wide job from the settings file and the flags
// (a flag wins).
func (lf *loadFlags) campaignBase() (*job.Job, error) {
	base := &job.Job{}
	if lf.settings != "" {
		raw, err := os.ReadFile(lf.settings)
		if err != nil {
			return nil, err
		}
		if base, err = job.Decode(raw); err != nil {
			return nil, fmt.Errorf("%s: %w", lf.settings, err)
		}
		if base.TargetCount() > 0 || base.JobID != "" {
			return nil, fmt.Errorf("%s: campaign settings hold no targetMsgkey, targetMsgs or jobId (they come from the file and the campaign id)", lf.settings)
		}
	}
	for _, s := range []struct {
		dst *string
		v   string
	}{{&base.AppID, lf.appID}, {&base.WorkspaceID, lf.workspaceID}, {&base.TemplateName, lf.template}, {&base.TaskName, lf.taskName}} {
		if s.v != "" {
			*s.dst = s.v
		}
	}
	if lf.deliveryType != 0 {
		base.DeliveryType = lf.deliveryType
	}
	if lf.expiredSeconds != 0 {
		base.ExpiredSeconds = lf.expiredSeconds
	}
	if base.TaskName == "" {
		base.TaskName = lf.campaign
	}
	return base, nil
}

// checkBase validates the campaign settings as a job of the chosen kind, with a
// probe target, before a row is read.
func checkBase(base *job.Job, api string, maxTargets int) error {
	probe := *base
	probe.JobID = "probe"
	if api == job.APIMultiple {
		probe.TargetMsgs = []job.TargetMsg{{Target: "probe", MsgKey: "probe"}}
		probe.TemplateKeyValue = nil // merged into each target's values
	} else {
		probe.TargetMsgkey = job.Targets{{Target: "probe", MsgKey: "probe"}}
	}
	if err := probe.Validate(job.Rules{MaxTargets: maxTargets}); err != nil {
		return fmt.Errorf("campaign settings: %w", err)
	}
	return nil
}

// load runs `enqueue load`.
func (e *env) load(lf *loadFlags, file string, wait bool, timeout time.Duration) error {
	if !job.ValidJobID(lf.campaign) || strings.Contains(lf.campaign, ".") {
		return fmt.Errorf("--campaign %q: one token of letters, digits, '-', '_' or ':' (it starts every job id)", lf.campaign)
	}
	if lf.groupSize < 1 || lf.groupSize > lf.maxTargets {
		return fmt.Errorf("--group-size %d: from 1 to the per-job cap %d", lf.groupSize, lf.maxTargets)
	}
	base, err := lf.campaignBase()
	if err != nil {
		return err
	}
	// One trace per load: each job's span continues it.
	ctx, span := otel.Tracer(tracing.Scope).Start(e.ctx, "load campaign "+lf.campaign, trace.WithSpanKind(trace.SpanKindProducer))
	defer span.End()
	e.ctx = ctx
	format := lf.format
	if format == "" {
		format = "csv"
		if strings.HasSuffix(file, ".jsonl") || strings.HasSuffix(file, ".ndjson") {
			format = "jsonl"
		}
	}
	api, why, err := lf.chooseAPI(base)
	if err != nil {
		return err
	}
	// Whole jobs (JSON Lines) carry their own settings: the campaign's are for CSV rows.
	if format == "csv" {
		if err := checkBase(base, api, lf.maxTargets); err != nil {
			return err
		}
	}
	if lf.memLimitMiB > 0 {
		// The loader's live memory is the window and the jobs awaiting acks; a soft
		// limit makes the GC keep the heap near it instead of doubling it.
		debug.SetMemoryLimit(int64(lf.memLimitMiB) << 20)
	}
	if lf.cpuProfile != "" {
		f, err := os.Create(lf.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if wait && base.ReplyTo != "" {
		return fmt.Errorf("--wait follows %s: leave replyTo out of the campaign settings", e.topo.CampaignResults(lf.campaign))
	}
	in, size, err := open(file, e.stdin)
	if err != nil {
		return err
	}
	defer in.Close()
	o := loader.Options{
		Campaign: loader.Campaign{ID: lf.campaign, Base: base, API: api, GroupSize: lf.groupSize, Window: lf.window},
		Rules:    job.Rules{MaxTargets: lf.maxTargets},
		Strict:   lf.strict,
	}
	if lf.rejects != "" {
		f, err := os.Create(lf.rejects)
		if err != nil {
			return err
		}
		defer f.Close()
		o.Rejects = f
	}
	subject := e.topo.BulkSubject(lf.campaign)
	var pub *loader.Publisher
	ours := newJobSet() // with --wait: the jobs of this load, whose results are followed
	// Jobs are cut to what the server takes: its max_payload (the default one in a
	// dry run), or the job stream's max_msg_size when smaller, less room for headers.
	maxPayload, maxMsgSize := int64(loader.DefaultMaxPayload), int32(0)
	if !lf.dryRun {
		js, err := jetstream.New(e.nc, jetstream.WithPublishAsyncMaxPending(4096))
		if err != nil {
			return err
		}
		sctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
		stream, err := js.Stream(sctx, e.topo.JobsStream)
		cancel()
		if err != nil {
			return fmt.Errorf("stream %s (start a worker against this server first): %w", e.topo.JobsStream, err)
		}
		maxPayload, maxMsgSize = e.nc.MaxPayload(), stream.CachedInfo().Config.MaxMsgSize
		pub = loader.NewPublisher(e.ctx, js, subject, 0)
		if wait {
			pub.OnAck = ours.add
		}
		o.Sink = pub
	}
	o.Campaign.MaxBytes = loader.JobLimit(maxPayload, maxMsgSize)
	if format == "csv" {
		fmt.Fprintf(e.stderr, "jobs: %s, up to %d targets each (%s) and %d bytes (max_payload %d less %d for headers)\n",
			api, lf.groupSize, why, o.Campaign.MaxBytes, maxPayload, loader.HeaderRoom)
	}
	counted := &countingReader{r: in}
	show := e.progress(size, counted)
	o.Progress = func(s loader.Summary) { show(s, false) }

	var sum loader.Summary
	if format == "jsonl" {
		sum, err = loader.LoadJSONL(e.ctx, counted, o)
	} else {
		sum, err = loader.LoadCSV(e.ctx, counted, o)
	}
	if pub != nil {
		if cerr := pub.Close(); err == nil {
			err = cerr
		}
	}
	sum.Elapsed = max(sum.Elapsed, time.Millisecond)
	show(sum, true)
	verb := "published to " + subject
	jobs, targets := sum.Jobs, sum.Targets
	if lf.dryRun {
		verb = "validated (dry run, nothing published)"
	} else {
		// Only what the stream acknowledged: a job sent but not stored is not counted.
		jobs = int(pub.Stored.Load() + pub.Duplicates.Load())
		targets = int(pub.StoredTargets.Load() + pub.DuplicateTargets.Load())
	}
	fmt.Fprintf(e.stdout, "%d rows → %d jobs, %d targets %s in %s (%.0f targets/s, %.0f jobs/s); %d rows rejected",
		sum.Rows, jobs, targets, verb, sum.Elapsed.Round(time.Millisecond),
		float64(targets)/sum.Elapsed.Seconds(), float64(jobs)/sum.Elapsed.Seconds(), sum.Rejected)
	if lf.rejects != "" && sum.Rejected > 0 {
		fmt.Fprintf(e.stdout, " (see %s)", lf.rejects)
	}
	fmt.Fprintln(e.stdout)
	if pub != nil {
		fmt.Fprintf(e.stdout, "stored: %d new jobs, %d already enqueued by an earlier run; %d publishes retried (%d while the job queue was full)\n",
			pub.Stored.Load(), pub.Duplicates.Load(), pub.Retries.Load(), pub.FullWaits.Load())
		if jobs < sum.Jobs {
			fmt.Fprintf(e.stdout, "not stored: %d jobs, %d targets (the load stopped first; run it again to load them)\n",
				sum.Jobs-jobs, sum.Targets-targets)
		}
	}
	if err != nil {
		return err
	}
	if wait && !lf.dryRun {
		// Jobs of a CSV file reply under the campaign's results; whole jobs from a
		// .jsonl file may carry ids and replyTo of their own.
		filter := e.topo.CampaignResults(lf.campaign)
		if format == "jsonl" {
			filter = e.topo.ResultSubjects()
		}
		if err := e.followCampaign(lf.campaign, filter, ours, timeout); err != nil {
			return err
		}
	}
	if sum.Rejected > 0 {
		return exitError{1}
	}
	return nil
}

// jobSet holds job ids by a 64-bit hash: a million one-target jobs in about
// 36 MiB, less than the ids.
type jobSet struct {
	seed maphash.Seed
	ids  map[uint64]struct{}
}

func newJobSet() *jobSet { return &jobSet{seed: maphash.MakeSeed(), ids: map[uint64]struct{}{}} }

func (s *jobSet) add(id string) { s.ids[maphash.String(s.seed, id)] = struct{}{} }

func (s *jobSet) has(id string) bool {
	_, ok := s.ids[maphash.String(s.seed, id)]
	return ok
}

// followCampaign reads the results under filter (from the start: a rerun counts
// the first run's results) as a stream until every job of this load has one, and
// prints their totals. Results of the campaign's other files are not counted.
func (e *env) followCampaign(campaignName, filter string, ours *jobSet, timeout time.Duration) error {
	t := campaign.Totals{FailedBy: map[string]int{}}
	seen := map[string]bool{}
	jobs := len(ours.ids)
	last := time.Now()
	err := e.ops.Follow(e.ctx, filter, timeout, func(r *job.Result) bool {
		if !seen[r.JobID] && ours.has(r.JobID) {
			seen[r.JobID] = true
			t.Add(r)
		}
		if time.Since(last) >= 2*time.Second {
			last = time.Now()
			e.showProgress(campaignName, len(seen), jobs, t)
		}
		return len(seen) >= jobs
	})
	e.printTotals(t)
	if errors.Is(err, ops.ErrTimedOut) {
		return fmt.Errorf("%d of %d results within %s: are the workers running?", len(seen), jobs, timeout)
	}
	if err != nil {
		return err
	}
	if t.Failed > 0 {
		return exitError{1}
	}
	return nil
}

// showProgress is the campaign status line (campaign status --watch says the
// same), or the results counted here when no worker answers.
func (e *env) showProgress(name string, done, jobs int, t campaign.Totals) {
	if st, err := e.ops.Progress(e.ctx, name); err == nil && st.Workers > 0 {
		fmt.Fprintln(e.stderr, line(st))
		return
	}
	fmt.Fprintf(e.stderr, "results: %d of %d jobs, %d sent, %d duplicates, %d failed\n", done, jobs, t.Sent, t.Duplicates, t.Failed)
}

func (e *env) printTotals(t campaign.Totals) {
	fmt.Fprintf(e.stdout, "campaign results: %d jobs, %d targets: %d sent, %d duplicates, %d failed\n",
		t.Jobs, t.Targets, t.Sent, t.Duplicates, t.Failed)
	e.printFailedBy("  ", t.FailedBy)
}

// progress shows a bar on a terminal, and a line every 2 s otherwise.
func (e *env) progress(size int64, counted *countingReader) func(loader.Summary, bool) {
	if f, ok := e.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) && size > 0 {
		bar := progressbar.NewOptions64(size, progressbar.OptionSetWriter(f), progressbar.OptionShowBytes(true),
			progressbar.OptionSetDescription("loading"), progressbar.OptionShowCount(), progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionSetPredictTime(true), progressbar.OptionClearOnFinish())
		return func(_ loader.Summary, done bool) {
			_ = bar.Set64(counted.n)
			if done {
				_ = bar.Finish()
			}
		}
	}
	last := time.Now()
	return func(s loader.Summary, done bool) {
		if done || time.Since(last) < 2*time.Second {
			return
		}
		last = time.Now()
		fmt.Fprintf(e.stderr, "loading: %d rows, %d jobs, %d targets, %.0f targets/s\n", s.Rows, s.Jobs, s.Targets,
			float64(s.Targets)/max(s.Elapsed.Seconds(), 0.001))
	}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func open(name string, stdin io.Reader) (io.ReadCloser, int64, error) {
	if name == "-" {
		return io.NopCloser(stdin), 0, nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, st.Size(), nil
}
