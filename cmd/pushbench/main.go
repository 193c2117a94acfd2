// Command pushbench measures the whole pipeline on one machine: it starts the
// mPaaS emulator and a JetStream server (or uses NATS_URL), N worker processes on
// one Redis, loads a campaign, waits for every result, and prints one JSON report:
// throughput, latency, limiter fidelity as the emulator saw it, worker CPU and
// memory, and the bare baseline — the same number of SDK calls straight at the
// same emulator with the same concurrency, before and after the pipeline.
//
//	go run ./cmd/pushbench --workers 3 --targets 100000 --job-size 100
//	go run ./cmd/pushbench --workers 1 --targets 100000 --job-size 1000 --api multiple --personal
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/mpaas-push/pushworker/internal/clock"
	"github.com/mpaas-push/pushworker/internal/cmdmain"
	"github.com/mpaas-push/pushworker/internal/loader"
	"github.com/mpaas-push/pushworker/internal/mpaassim"
	"github.com/mpaas-push/pushworker/internal/push"
	"github.com/mpaas-push/pushworker/internal/teststack"
	"github.com/mpaas-push/pushworker/job"
	"github.com/mpaas-push/pushworker/topology"
)

const (
	benchKey    = "bench-access-key"
	benchSecret = "bench-access-secret"
)

type options struct {
	workers, targets, jobSize, rate, maxInFlight, jobsPerLane int
	latency, jitter                                           time.Duration
	quota                                                     int
	workerBin, simBin, natsBin, natsURL, redisURL             string
	api                                                       string // job.APITemplate or job.APIMultiple
	personal                                                  bool   // every target its own template values
	timeout                                                   time.Duration
	skipBare                                                  bool
	eventsPerSec                                              int
	eventsFor                                                 time.Duration
	events                                                    int  // stop after this many events (0: by eventsFor, or the campaign's end)
	eventsBare                                                bool // a bare one-target SDK call for each event, timed
	queueOnly                                                 bool // no worker: the queue alone answers the events
	warmup                                                    int  // targets of a campaign run before the measured one
	cpuProfile, allocProfile                                  string
	workerGOGC                                                string
	traces                                                    bool
	lane                                                      string // topology.LaneBulk or LaneDefault
	profileFor                                                time.Duration
}

// Report is what pushbench prints.
type Report struct {
	Setup struct {
		Workers      int    `json:"workers"`
		Targets      int    `json:"targets"`
		JobSize      int    `json:"jobSize"`
		API          string `json:"api"`
		Personal     bool   `json:"personal"`
		Lane         string `json:"lane"`
		Jobs         int    `json:"jobs"`
		RateLimit    int    `json:"rateLimit"`
		MaxInFlight  int    `json:"maxInFlightPerWorker"`
		Latency      string `json:"emulatorLatency"`
		Quota        int    `json:"emulatorQuota"`
		Machine      string `json:"machine"`
		NATS, Redis  string
		GoMaxProcs   int `json:"cores"`
		BareParallel int `json:"bareConcurrency"`
	} `json:"setup"`
	TargetsPerSec float64 `json:"targetsPerSec"`
	CallsPerSec   float64 `json:"callsPerSec"`
	Seconds       float64 `json:"seconds"`
	LatencyP50ms  float64 `json:"enqueueToResultP50ms"`
	LatencyP99ms  float64 `json:"enqueueToResultP99ms"`
	Events        struct {
		Jobs  int     `json:"jobs"`
		P50ms float64 `json:"enqueueToResultP50ms"`
		P90ms float64 `json:"enqueueToResultP90ms"`
		P99ms float64 `json:"enqueueToResultP99ms"`
		MaxMs float64 `json:"enqueueToResultMaxMs"`
		// With --events-bare: a bare one-target SDK call to the same emulator
		// for each event, half an event period after it, and what the worker
		// adds to it (the event's publish → result less the bare call).
		Bare struct {
			Calls int     `json:"calls"`
			P50ms float64 `json:"p50ms"`
			P90ms float64 `json:"p90ms"`
			P99ms float64 `json:"p99ms"`
			MaxMs float64 `json:"maxMs"`
		} `json:"bare"`
		AddedP50ms float64 `json:"addedP50ms"`
		AddedP99ms float64 `json:"addedP99ms"`
		// Where the time went, p99 of each stage: before the worker started the job,
		// inside the worker, and from its end to the result reaching the reader.
		QueueP99ms  float64 `json:"queuedP99ms"`
		WorkerP99ms float64 `json:"inWorkerP99ms"`
		ResultP99ms float64 `json:"resultDeliveryP99ms"`
		// With --traces: each stretch of an event's way (its spans, the gaps
		// between them), p50 and p99 over the events, and those of one event
		// (the one of median latency).
		Steps  []stepFigures `json:"steps,omitempty"`
		OneJob []step        `json:"oneEvent,omitempty"`
	} `json:"events"`
	Sent       int `json:"sent"`
	Duplicates int `json:"duplicates"`
	Failed     int `json:"failed"`
	Limiter    struct {
		MaxOneSecondWindow float64 `json:"maxOneSecondWindowOverRate"`
		MeanOverRate       float64 `json:"meanOverRate"`
		MaxCallsInOneSec   int     `json:"maxCallsInOneSecond"`
		MeanCallsPerSec    float64 `json:"meanCallsPerSecond"`
	} `json:"limiter"`
	Emulator struct {
		Calls          int64                        `json:"calls"`
		ByCode         map[string]int64             `json:"byCode"`
		ByAPI          map[string]mpaassim.APIStats `json:"byAPI"`
		DuplicatePairs int                          `json:"duplicatePairs"`
	} `json:"emulator"`
	Throttling struct {
		ThrottledShare   float64 `json:"throttledShareAfter10s"`    // throttled answers ÷ calls, from 10 s after the start
		AcceptedPerSec   float64 `json:"acceptedPerSecAfter10s"`    // pushes accepted per second, from 10 s after the start
		AcceptedOverQuot float64 `json:"acceptedOverQuotaAfter10s"` // that ÷ the emulator's quota
	} `json:"throttling"`
	WorkerCPUSeconds   float64 `json:"workerCpuSeconds"`
	WorkerCPUmsPer1000 float64 `json:"workerCpuMsPer1000Targets"`
	WorkerPeakRSSMB    float64 `json:"workerPeakRssMB"`
	Bare               struct {
		BeforeCallsPerSec float64 `json:"beforeCallsPerSec"`
		AfterCallsPerSec  float64 `json:"afterCallsPerSec"`
		Calls             int     `json:"calls"`
	} `json:"bare"`
	Efficiency float64 `json:"efficiency"`
	Cost       Cost    `json:"cost"`
	// With --traces: what the workers exported to the bench's OTLP sink.
	TraceExports     int64 `json:"traceExports,omitempty"`
	TraceExportBytes int64 `json:"traceExportBytes,omitempty"`
}

// Cost is what the campaign cost each process, per mPaaS call and per job, from
// /proc (CPU) and Redis's INFO (commands, memory), between the first publish and
// the last result. A figure that cannot be measured (a server on another
// machine, or not run by the bench) is 0.
type Cost struct {
	Calls int `json:"calls"` // mPaaS calls of the campaign, as the emulator counted them
	Jobs  int `json:"jobs"`  // the campaign's jobs and the event jobs

	WorkerCPUusPerCall   float64 `json:"workerCpuUsPerCall"`
	WorkerCPUusPerJob    float64 `json:"workerCpuUsPerJob"` // with --job-size 1: the cost of a one-target job
	RedisCPUusPerCall    float64 `json:"redisCpuUsPerCall"`
	RedisCommandsPerCall float64 `json:"redisCommandsPerCall"`
	NATSCPUusPerCall     float64 `json:"natsCpuUsPerCall"`
	NATSCPUusPerJob      float64 `json:"natsCpuUsPerJob"`
	EmulatorCPUusPerCall float64 `json:"emulatorCpuUsPerCall"`
	BenchCPUusPerCall    float64 `json:"publisherAndReaderCpuUsPerCall"` // pushbench itself: publishing jobs, reading results

	// The bare SDK client's CPU per call (pushbench's own process while it makes the
	// bare calls), and the emulator's in that time.
	BareClientCPUusPerCall   float64 `json:"bareClientCpuUsPerCall"`
	BareEmulatorCPUusPerCall float64 `json:"bareEmulatorCpuUsPerCall"`
	// WorkerOverBare is workerCpuUsPerCall ÷ bareClientCpuUsPerCall.
	WorkerOverBare float64 `json:"workerOverBareClient"`

	// Redis's used_memory after the run less before it, over the pairs the
	// emulator saw delivered: what one remembered pair costs.
	RedisBytesPerPair float64 `json:"redisBytesPerRememberedPair"`
	RememberedPairs   int     `json:"rememberedPairs"`
}

func main() { cmdmain.Main("pushbench", run) }

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("pushbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.IntVar(&o.workers, "workers", 3, "worker processes")
	fs.IntVar(&o.targets, "targets", 100000, "targets in the campaign")
	fs.IntVar(&o.jobSize, "job-size", 100, "targets per job")
	fs.IntVar(&o.rate, "rate", 100000, "PUSH_RATE_LIMIT of the workers (calls/s, shared)")
	fs.IntVar(&o.maxInFlight, "max-in-flight", 32, "PUSH_MAX_IN_FLIGHT of each worker")
	fs.IntVar(&o.jobsPerLane, "jobs-per-lane", 8, "PUSH_JOBS_PER_LANE of each worker")
	fs.DurationVar(&o.latency, "latency", 0, "emulator latency per call")
	fs.DurationVar(&o.jitter, "jitter", 0, "emulator latency jitter")
	fs.IntVar(&o.quota, "quota", 0, "emulator quota, calls per second (0: none)")
	fs.StringVar(&o.workerBin, "worker-bin", "", "worker binary (default: go build ./cmd/worker)")
	fs.StringVar(&o.simBin, "sim-bin", "", "emulator binary (default: go build ./cmd/mpaas-sim)")
	fs.StringVar(&o.natsBin, "nats-server", "nats-server", "the nats-server binary the bench runs, in a temp dir on a free port")
	fs.StringVar(&o.natsURL, "nats-url", getenv("NATS_URL"), "use this NATS server instead of running one (its CPU is then not measured)")
	fs.StringVar(&o.redisURL, "redis-url", firstNonEmpty(getenv("REDIS_URL"), "redis://127.0.0.1:6379"), "Redis shared by the workers")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "give up after")
	fs.BoolVar(&o.skipBare, "skip-bare", false, "skip the bare baseline")
	api := fs.String("api", "template", "template: targetMsgkey jobs (PushTemplate, 10 a call); multiple: targetMsgs jobs (PushMultiple, 100 a call)")
	fs.BoolVar(&o.personal, "personal", false, "every target its own template values (needs --api multiple)")
	fs.IntVar(&o.eventsPerSec, "events-per-sec", 0, "also publish this many one-target event jobs a second on the default lane")
	fs.DurationVar(&o.eventsFor, "events-for", 20*time.Second, "how long to publish events when --targets is 0 (an idle system)")
	fs.IntVar(&o.events, "events", 0, "publish this many events, then stop (0: for --events-for, or until the campaign ends)")
	fs.BoolVar(&o.queueOnly, "queue-only", false, "no worker: the bench runs the worker's queue with a handler that answers each job at once (no Redis, no mPaaS call): the events' publish → result and nats-server's CPU per job are then JetStream's way in and out alone")
	fs.IntVar(&o.warmup, "warmup", 0, "first run a campaign of this many targets through the workers, unmeasured: the measured one then meets warm workers, streams and Redis")
	fs.BoolVar(&o.eventsBare, "events-bare", false, "for each event, a bare one-target SDK call to the same emulator half an event period later, timed: the report's events.bare and what the worker adds (the emulator's counts include these calls)")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the first worker during the campaign to this file (PUSH_PPROF)")
	fs.StringVar(&o.lane, "lane", topology.LaneBulk, "the campaign's lane: bulk (push.jobs.bulk.bench) or default (push.jobs.bench, the events lane)")
	fs.StringVar(&o.workerGOGC, "worker-gogc", "", "GOGC of the workers (default: the worker's own, 400)")
	fs.BoolVar(&o.traces, "traces", false, "the workers trace every job (OTEL_TRACES_SAMPLER=always_on) and export over OTLP/HTTP to a sink in the bench")
	fs.StringVar(&o.allocProfile, "allocprofile", "", "write the first worker's allocation profile, after the campaign, to this file (PUSH_PPROF)")
	fs.DurationVar(&o.profileFor, "profile-for", 20*time.Second, "how long --cpuprofile profiles, from the first publish")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.events < 0 || o.eventsPerSec < 0 || o.targets < 0 || (o.targets == 0 && o.eventsPerSec == 0) || o.jobSize <= 0 || o.jobSize > job.DefaultMaxTargets || o.workers <= 0 {
		return errors.New("--targets (0 only with --events-per-sec), --job-size (1–1000) and --workers must be positive")
	}
	switch *api {
	case "template":
		o.api = job.APITemplate
	case "multiple":
		o.api = job.APIMultiple
	default:
		return fmt.Errorf("--api %q: template or multiple", *api)
	}
	if o.lane != topology.LaneBulk && o.lane != topology.LaneDefault {
		return fmt.Errorf("--lane %q: %s or %s", o.lane, topology.LaneBulk, topology.LaneDefault)
	}
	if o.personal && o.api != job.APIMultiple {
		return errors.New("--personal needs --api multiple: a PushTemplate job has one set of values for all its targets")
	}
	if o.targets == 0 {
		o.skipBare = true
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	b := &bench{o: o, log: stderr}
	defer b.cleanup()
	rep, err := b.run(ctx)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

type bench struct {
	o       options
	sink    *traceSink // with --traces
	log     io.Writer
	simURL  string
	simPID  int
	natsPID int
	closers []func()
	workers []*teststack.Process
	natsURL string
	tempDir string

	campaignDone atomic.Bool  // the last campaign result arrived: events stop
	eventTraces  []eventTrace // with --traces: each event's publish, result and trace
}

func (b *bench) cleanup() {
	for i := len(b.closers) - 1; i >= 0; i-- {
		b.closers[i]()
	}
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "pushbench: "+format+"\n", args...)
}

func (b *bench) run(ctx context.Context) (*Report, error) {
	var err error
	if b.tempDir, err = os.MkdirTemp("", "pushbench"); err != nil {
		return nil, err
	}
	b.closers = append(b.closers, func() { os.RemoveAll(b.tempDir) })
	if err := b.startEmulator(ctx); err != nil {
		return nil, err
	}
	if err := b.startNATS(ctx); err != nil {
		return nil, err
	}
	rp, err := newRedisProbe(ctx, b.o.redisURL)
	if err != nil {
		return nil, err
	}
	defer rp.close()
	rep := &Report{}
	s := &rep.Setup
	s.Workers, s.Targets, s.JobSize, s.RateLimit, s.MaxInFlight = b.o.workers, b.o.targets, b.o.jobSize, b.o.rate, b.o.maxInFlight
	s.API, s.Personal, s.Lane = b.o.api, b.o.personal, b.o.lane
	s.Jobs = (b.o.targets + b.o.jobSize - 1) / b.o.jobSize
	s.Latency, s.Quota = b.o.latency.String(), b.o.quota
	s.Machine, s.GoMaxProcs = machine(), numCPU()
	s.NATS, s.Redis = b.natsURL, b.o.redisURL
	s.BareParallel = b.o.workers * b.o.maxInFlight
	callSize := callSizeOf(b.o.api)
	calls := (b.o.targets + callSize - 1) / callSize
	rep.Bare.Calls = calls

	bareCPU := newMeter()
	bareCPU.add("client", os.Getpid())
	bareCPU.add("emulator", b.simPID)
	bareSpent := map[string]time.Duration{}
	bareRound := func(name string) (float64, error) {
		bareCPU.begin()
		perSec, err := b.bare(ctx, name, calls, s.BareParallel)
		for k, d := range bareCPU.since() {
			bareSpent[k] += d
		}
		return perSec, err
	}
	if !b.o.skipBare {
		b.logf("bare baseline before: %d SDK calls, %d at a time", calls, s.BareParallel)
		if rep.Bare.BeforeCallsPerSec, err = bareRound("bare-before"); err != nil {
			return nil, err
		}
	}
	if err := b.simReset(ctx); err != nil {
		return nil, err
	}
	start := b.startWorkers
	if b.o.queueOnly {
		start = b.startQueueOnly
	}
	if err := start(ctx); err != nil {
		return nil, err
	}
	if b.o.warmup > 0 {
		if err := b.warmUp(ctx); err != nil {
			return nil, err
		}
		if err := b.simReset(ctx); err != nil {
			return nil, err
		}
	}
	cpu := newMeter()
	for _, w := range b.workers {
		cpu.add("worker", w.Cmd.Process.Pid)
	}
	cpu.add("redis", rp.pid)
	cpu.add("nats", b.natsPID)
	cpu.add("emulator", b.simPID)
	cpu.add("bench", os.Getpid())
	memBefore, cmdsBefore, err := rp.counters(ctx)
	if err != nil {
		return nil, err
	}
	cpu.begin()
	profiled := b.profile(ctx)
	if err := b.campaign(ctx, rep); err != nil {
		return nil, err
	}
	spent := cpu.since()
	if err := <-profiled; err != nil {
		return nil, err
	}
	if err := b.allocs(ctx); err != nil {
		return nil, err
	}
	memAfter, cmdsAfter, err := rp.counters(ctx)
	if err != nil {
		return nil, err
	}
	b.measureWorkers(rep)
	b.stopWorkers() // a worker exports its last spans as it stops
	if b.sink != nil && len(b.eventTraces) > 0 {
		rep.Events.Steps, rep.Events.OneJob = eventSteps(b.sink, b.eventTraces)
	}
	st, err := b.simStats(ctx)
	if err != nil {
		return nil, err
	}
	rep.Emulator.Calls, rep.Emulator.ByCode, rep.Emulator.ByAPI, rep.Emulator.DuplicatePairs = st.Calls, st.ByCode, st.ByAPI, st.DuplicatePairs
	rep.Limiter.MaxCallsInOneSec, rep.Limiter.MeanCallsPerSec = st.MaxCallsInOneSecond, st.MeanCallsPerSecond
	rep.Limiter.MaxOneSecondWindow = round(float64(st.MaxCallsInOneSecond)/float64(b.o.rate), 3)
	rep.Limiter.MeanOverRate = round(st.MeanCallsPerSecond/float64(b.o.rate), 3)

	c := &rep.Cost
	// The bare event calls are not the workers': they are left out of the cost.
	c.Calls, c.Jobs, c.RememberedPairs = int(st.Calls)-rep.Events.Bare.Calls, s.Jobs+rep.Events.Jobs, st.Pairs-rep.Events.Bare.Calls
	c.WorkerCPUusPerCall, c.WorkerCPUusPerJob = perUnit(spent["worker"], c.Calls), perUnit(spent["worker"], c.Jobs)
	c.RedisCPUusPerCall = perUnit(spent["redis"], c.Calls)
	c.NATSCPUusPerCall, c.NATSCPUusPerJob = perUnit(spent["nats"], c.Calls), perUnit(spent["nats"], c.Jobs)
	c.EmulatorCPUusPerCall, c.BenchCPUusPerCall = perUnit(spent["emulator"], c.Calls), perUnit(spent["bench"], c.Calls)
	if c.Calls > 0 {
		c.RedisCommandsPerCall = round(float64(cmdsAfter-cmdsBefore)/float64(c.Calls), 1)
	}
	if c.RememberedPairs > 0 {
		c.RedisBytesPerPair = round(float64(memAfter-memBefore)/float64(c.RememberedPairs), 1)
	}
	if !b.o.skipBare {
		b.logf("bare baseline after")
		if rep.Bare.AfterCallsPerSec, err = bareRound("bare-after"); err != nil {
			return nil, err
		}
		bare := (rep.Bare.BeforeCallsPerSec + rep.Bare.AfterCallsPerSec) / 2
		rep.Efficiency = round(rep.TargetsPerSec/(float64(callSize)*bare), 3)
		c.BareClientCPUusPerCall = perUnit(bareSpent["client"], 2*calls)
		c.BareEmulatorCPUusPerCall = perUnit(bareSpent["emulator"], 2*calls)
		if c.BareClientCPUusPerCall > 0 {
			c.WorkerOverBare = round(c.WorkerCPUusPerCall/c.BareClientCPUusPerCall, 2)
		}
	}
	if b.o.targets > 0 {
		rep.WorkerCPUmsPer1000 = round(rep.WorkerCPUSeconds*1000/float64(b.o.targets)*1000, 2)
	}
	return rep, nil
}

// perUnit is d in µs per unit, 0 when there is none.
func perUnit(d time.Duration, units int) float64 {
	if units <= 0 {
		return 0
	}
	return round(float64(d.Microseconds())/float64(units), 1)
}

// bare makes calls SDK calls (of 10 targets, or of 100 with PushMultiple)
// straight at the emulator, parallel at a time.
func (b *bench) bare(ctx context.Context, app string, calls, parallel int) (float64, error) {
	c, err := push.New(push.Config{Endpoint: b.simURL, AccessKeyID: benchKey, AccessKeySecret: benchSecret, MaxConns: parallel})
	if err != nil {
		return 0, err
	}
	defer c.Close()
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := next.Add(1)
				if i > int64(calls) {
					return
				}
				j := b.newJob("bare", app, "u"+strconv.FormatInt(i, 10)+"-", "m", 0, callSizeOf(b.o.api))
				if out := c.Push(ctx, j, j.Pairs()); out.Class != push.Success {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		return 0, fmt.Errorf("bare baseline: %d of %d calls failed (a quota on the emulator? run the baseline without one)", n, calls)
	}
	return round(float64(calls)/time.Since(start).Seconds(), 1), ctx.Err()
}

// startWorkers starts the worker processes and waits until each says it started.
func (b *bench) startWorkers(ctx context.Context) error {
	bin := b.o.workerBin
	if bin == "" {
		b.logf("building the worker")
		var err error
		if bin, err = teststack.BuildWorker(ctx, b.tempDir); err != nil {
			return err
		}
	}
	prefix := "pb" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":" // short: a key's length is part of what a pair costs
	b.closers = append(b.closers, func() { b.deleteKeys(prefix) })
	env := []string{"NATS_URL=" + b.natsURL, "REDIS_URL=" + b.o.redisURL, "PUSH_REDIS_PREFIX=" + prefix,
		"MPAAS_ENDPOINT=" + b.simURL, "MPAAS_AK_ENV=" + benchKey, "MPAAS_SK_ENV=" + benchSecret,
		"PUSH_RATE_LIMIT=" + strconv.Itoa(b.o.rate), "PUSH_MAX_IN_FLIGHT=" + strconv.Itoa(b.o.maxInFlight),
		"PUSH_JOBS_PER_LANE=" + strconv.Itoa(b.o.jobsPerLane), "PUSH_HTTP_ADDR=127.0.0.1:0", "PUSH_LOG_LEVEL=info",
		"PUSH_LOG_FORMAT=json", "PUSH_PPROF=" + strconv.FormatBool(b.o.cpuProfile != "" || b.o.allocProfile != "")}
	if b.o.workerGOGC != "" {
		env = append(env, "GOGC="+b.o.workerGOGC)
	}
	if b.o.traces {
		sink, err := startTraceSink()
		if err != nil {
			return err
		}
		b.closers = append(b.closers, sink.close)
		b.sink = sink
		env = append(env, sink.env()...)
	}
	b.closers = append(b.closers, b.stopWorkers)
	for range b.o.workers {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		p, err := teststack.StartProcess(sctx, bin, env, nil)
		cancel()
		if err != nil {
			return err
		}
		b.workers = append(b.workers, p)
	}
	b.logf("%d workers started", b.o.workers)
	return nil
}

// deleteKeys removes the run's dedupe and limiter keys from Redis, with a context
// of its own (the run's may have ended), so that a bench leaves nothing behind.
func (b *bench) deleteKeys(prefix string) {
	opts, err := redis.ParseURL(b.o.redisURL)
	if err != nil {
		return
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n := 0
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var batch []string
	for iter.Next(ctx) {
		if batch = append(batch, iter.Val()); len(batch) == 1000 {
			n += int(rdb.Unlink(ctx, batch...).Val())
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		n += int(rdb.Unlink(ctx, batch...).Val())
	}
	b.logf("deleted the run's %d Redis keys (%s*)", n, prefix)
}

func (b *bench) stopWorkers() {
	for _, w := range b.workers {
		_ = w.Stop()
	}
	b.workers = nil
}

// connect is a connection to the bench's NATS server and a reader of the
// results published from now on.
func (b *bench) connect(ctx context.Context) (*nats.Conn, jetstream.JetStream, jetstream.Consumer, error) {
	nc, err := nats.Connect(b.natsURL)
	if err != nil {
		return nil, nil, nil, err
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err == nil {
		var results jetstream.Consumer
		results, err = js.OrderedConsumer(ctx, topology.Default().ResultsStream, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverNewPolicy})
		if err == nil {
			return nc, js, results, nil
		}
	}
	nc.Close()
	return nil, nil, nil, err
}

// campaignSubject is where the campaign's jobs go: the bulk lane, or the events lane with --lane default.
func (b *bench) campaignSubject() string {
	if b.o.lane == topology.LaneDefault {
		return topology.Default().EventsSubject("bench")
	}
	return topology.Default().BulkSubject("bench")
}

// campaign publishes the jobs and reads every result.
func (b *bench) campaign(ctx context.Context, rep *Report) error {
	nc, js, results, err := b.connect(ctx)
	if err != nil {
		return err
	}
	defer nc.Close()
	jobs := rep.Setup.Jobs
	published := make([]time.Time, jobs)
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	pub := loader.NewPublisher(ctx, js, b.campaignSubject(), 0)
	start := time.Now()
	go func() {
		for i := range jobs {
			n := min(b.o.jobSize, b.o.targets-i*b.o.jobSize)
			j := b.newJob(fmt.Sprintf("bench-%s.%d", run, i), "bench", "u", "m-"+run, i*b.o.jobSize, n)
			body, _ := j.Encode()
			published[i] = time.Now()
			if pub.Publish(ctx, j.JobID, j.TargetCount(), body) != nil {
				return
			}
		}
		_ = pub.Close()
	}()
	b.logf("publishing %d jobs of %d targets", jobs, b.o.jobSize)
	ev := b.startEvents(ctx, js, run)
	// The emulator's counts 10 s in: throttling is judged after the limiter settled.
	var at10 mpaassim.Stats
	var t10 time.Time
	snap := make(chan struct{})
	snapCtx, stopSnap := context.WithCancel(ctx)
	defer stopSnap()
	go func() {
		defer close(snap)
		if clock.Sleep(snapCtx, 10*time.Second) {
			if st, err := b.simStats(snapCtx); err == nil {
				at10, t10 = st, time.Now()
			}
		}
	}()
	lat := make([]float64, 0, jobs)
	seen := make([]bool, jobs)
	var last time.Time
	var evLat, evQueue, evWorker, evResult []float64
	msgs, stopResults, err := stream(results)
	if err != nil {
		return err
	}
	defer stopResults()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for len(lat) < jobs || !ev.complete(len(evLat)) {
		var m jetstream.Msg
		select {
		case m = <-msgs:
		case <-tick.C: // the events may have stopped with every result in
			continue
		case <-ctx.Done():
			return fmt.Errorf("%d of %d results: %w", len(lat), jobs, ctx.Err())
		}
		var r resultFigures
		if json.Unmarshal(m.Data(), &r) != nil {
			continue
		}
		if at, ok := ev.published(r.JobID); ok {
			now := time.Now()
			ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
			evLat = append(evLat, ms(now.Sub(at)))
			if b.sink != nil {
				b.eventTraces = append(b.eventTraces, eventTrace{published: at, read: now, traceID: r.TraceID})
			}
			evQueue = append(evQueue, ms(r.StartedAt.Sub(at)))
			evWorker = append(evWorker, ms(r.FinishedAt.Sub(r.StartedAt.Time)))
			evResult = append(evResult, ms(now.Sub(r.FinishedAt.Time)))
			continue
		}
		i, ok := jobIndex(r.JobID, run)
		if !ok || i >= jobs || seen[i] {
			continue
		}
		seen[i] = true
		last = time.Now()
		if len(lat)+1 == jobs {
			b.campaignDone.Store(true)
		}
		lat = append(lat, float64(last.Sub(published[i]).Microseconds())/1000)
		rep.Sent += r.Sent
		rep.Duplicates += r.Duplicates
		rep.Failed += r.Failed
	}
	if jobs == 0 {
		last = time.Now()
	}
	if err := ev.failed(); err != nil {
		return err
	}
	e := &rep.Events
	e.Jobs = len(evLat)
	if len(evLat) > 0 {
		e.P50ms, e.P90ms, e.P99ms, e.MaxMs = quantiles(evLat)
		e.QueueP99ms, e.WorkerP99ms, e.ResultP99ms = p99(evQueue), p99(evWorker), p99(evResult)
	}
	if bare := ev.bareTimes(); len(bare) > 0 {
		e.Bare.Calls = len(bare)
		e.Bare.P50ms, e.Bare.P90ms, e.Bare.P99ms, e.Bare.MaxMs = quantiles(bare)
		if len(evLat) > 0 {
			e.AddedP50ms, e.AddedP99ms = round(e.P50ms-e.Bare.P50ms, 2), round(e.P99ms-e.Bare.P99ms, 2)
		}
	}
	elapsed := last.Sub(start).Seconds()
	stopSnap()
	<-snap
	if !t10.IsZero() && last.After(t10) {
		end, err := b.simStats(ctx)
		if err != nil {
			return err
		}
		throttled := func(st mpaassim.Stats) int64 { return st.ByCode["Throttling.User"] + st.ByCode["8011"] }
		calls := end.Calls - at10.Calls
		window := last.Sub(t10).Seconds()
		if calls > 0 {
			rep.Throttling.ThrottledShare = round(float64(throttled(end)-throttled(at10))/float64(calls), 4)
		}
		rep.Throttling.AcceptedPerSec = round(float64(end.ByCode["OK"]-at10.ByCode["OK"])/window, 1)
		if b.o.quota > 0 {
			rep.Throttling.AcceptedOverQuot = round(rep.Throttling.AcceptedPerSec/float64(b.o.quota), 3)
		}
	}
	rep.Seconds = round(elapsed, 3)
	rep.TargetsPerSec = round(float64(b.o.targets)/elapsed, 1)
	st, err := b.simStats(ctx)
	if err != nil {
		return err
	}
	rep.CallsPerSec = round(float64(st.Calls)/elapsed, 1)
	if len(lat) > 0 {
		sort.Float64s(lat)
		rep.LatencyP50ms = round(lat[len(lat)/2], 1)
		rep.LatencyP99ms = round(lat[min(len(lat)-1, len(lat)*99/100)], 1)
	}
	return nil
}

// resultFigures is what the bench reads of a result: decoding the whole result
// (every chunk's targets) made the reader cost the shared machine more than
// the figures need. The other fields are skipped, not stored.
type resultFigures struct {
	JobID      string   `json:"jobId"`
	Sent       int      `json:"sent"`
	Duplicates int      `json:"duplicates"`
	Failed     int      `json:"failed"`
	StartedAt  job.Time `json:"startedAt"`
	FinishedAt job.Time `json:"finishedAt"`
	TraceID    string   `json:"traceId"`
}

// stream reads c's messages as a stream (not a round trip each) into a channel,
// until stop is called.
func stream(c jetstream.Consumer) (<-chan jetstream.Msg, func(), error) {
	it, err := c.Messages()
	if err != nil {
		return nil, nil, err
	}
	out := make(chan jetstream.Msg, 256)
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			m, err := it.Next()
			if err != nil {
				return
			}
			select {
			case out <- m:
			case <-quit:
				return
			}
		}
	}()
	return out, func() { close(quit); it.Stop(); <-done }, nil
}

func callSizeOf(api string) int {
	if api == job.APIMultiple {
		return job.MaxTargetsPerMultipleCall
	}
	return job.MaxTargetsPerCall
}

// newJob is a bench job of n targets <prefix><from>…: a targetMsgs job with
// --api multiple (each target its own values with --personal, else all the
// same), or a targetMsgkey job with one set of values.
func (b *bench) newJob(id, app, prefix, msgKey string, from, n int) *job.Job {
	j := &job.Job{JobID: id, TaskName: "bench", AppID: app, WorkspaceID: "bench",
		DeliveryType: 3, ExpiredSeconds: 3600, TemplateName: "bench"}
	shared := job.Object(`{"name":"bench","money":"100"}`)
	if b.o.api != job.APIMultiple {
		j.TemplateKeyValue = shared
		j.TargetMsgkey = make(job.Targets, n)
		for k := range j.TargetMsgkey {
			j.TargetMsgkey[k] = job.Target{Target: prefix + strconv.Itoa(from+k), MsgKey: msgKey}
		}
		return j
	}
	j.TargetMsgs = make([]job.TargetMsg, n)
	for k := range j.TargetMsgs {
		target := prefix + strconv.Itoa(from+k)
		values := shared
		if b.o.personal {
			values = job.ObjectOf([]string{"name", "money"}, []string{"用户 " + target, strconv.Itoa(from + k)})
		}
		j.TargetMsgs[k] = job.TargetMsg{Target: target, MsgKey: msgKey, TemplateKeyValue: values}
	}
	return j
}

// events publishes one-target event jobs on the default lane while the campaign
// runs (or for eventsFor on an idle system) and remembers when each went out.
type events struct {
	mu    sync.Mutex
	sent  map[string]time.Time
	total int
	bare  []float64 // with --events-bare: each bare call's time, ms
	err   error     // a bare call that failed
	done  chan struct{}
}

func (b *bench) startEvents(ctx context.Context, js jetstream.JetStream, run string) *events {
	ev := &events{sent: map[string]time.Time{}, done: make(chan struct{})}
	if b.o.eventsPerSec <= 0 {
		close(ev.done)
		return ev
	}
	stop := b.o.eventsFor
	period := time.Second / time.Duration(b.o.eventsPerSec)
	var bare *push.Client
	if b.o.eventsBare {
		c, err := push.New(push.Config{Endpoint: b.simURL, AccessKeyID: benchKey, AccessKeySecret: benchSecret, MaxConns: 1})
		if err != nil {
			ev.err = err
			close(ev.done)
			return ev
		}
		bare = c
	}
	go func() {
		defer close(ev.done)
		if bare != nil {
			defer bare.Close()
		}
		tick := time.NewTicker(period)
		defer tick.Stop()
		end := time.Now().Add(stop)
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			switch {
			case b.o.events > 0 && i >= b.o.events,
				b.o.events == 0 && b.o.targets == 0 && time.Now().After(end),
				b.o.targets > 0 && b.campaignDone.Load():
				return
			}
			id := fmt.Sprintf("ev-%s.%d", run, i)
			j := eventJob(id, "bench", "event-"+strconv.Itoa(i), run)
			body, _ := j.Encode()
			ev.mu.Lock()
			ev.sent[id] = time.Now()
			ev.total++
			ev.mu.Unlock()
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, _ = js.PublishMsg(pctx, &nats.Msg{Subject: topology.Default().EventsSubject("events"), Data: body, Header: nats.Header{jetstream.MsgIDHeader: []string{id}}})
			cancel()
			if bare != nil && !ev.bareCall(ctx, bare, eventJob("bare-"+id, "bench", "bare-event-"+strconv.Itoa(i), run), period/2) {
				return
			}
		}
	}()
	return ev
}

// bareCall makes j's call straight at the emulator, after a pause of after,
// and records how long it took; false when it failed or ctx ended.
func (ev *events) bareCall(ctx context.Context, c *push.Client, j *job.Job, after time.Duration) bool {
	if !clock.Sleep(ctx, after) {
		return false
	}
	start := time.Now()
	out := c.Push(ctx, j, j.Pairs())
	took := time.Since(start)
	ev.mu.Lock()
	defer ev.mu.Unlock()
	if out.Class != push.Success {
		ev.err = fmt.Errorf("a bare event call failed: %s %s %s", out.Class, out.ResultCode, job.Clip(out.ResultMessage))
		return false
	}
	ev.bare = append(ev.bare, float64(took.Nanoseconds())/1e6)
	return true
}

// eventJob is a one-target PushTemplate job, as the events are.
func eventJob(id, app, target, msgKey string) *job.Job {
	return &job.Job{JobID: id, TaskName: "event", AppID: app, WorkspaceID: "bench", DeliveryType: 3, ExpiredSeconds: 3600,
		TemplateName: "bench", TargetMsgkey: job.Targets{{Target: target, MsgKey: msgKey}}}
}

// published is when event id went out, if it is one.
func (ev *events) published(id string) (time.Time, bool) {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	at, ok := ev.sent[id]
	return at, ok
}

// complete reports whether publishing stopped and every event has its result.
func (ev *events) complete(results int) bool {
	select {
	case <-ev.done:
	default:
		return false
	}
	ev.mu.Lock()
	defer ev.mu.Unlock()
	return results >= ev.total
}

// quantiles sorts v and returns its p50, p90, p99 and max, in 0.01.
func quantiles(v []float64) (p50, p90, p99, most float64) {
	sort.Float64s(v)
	at := func(q int) float64 { return round(v[min(len(v)-1, len(v)*q/100)], 2) }
	return at(50), at(90), at(99), round(v[len(v)-1], 2)
}

// failed is the error of a bare call, if one failed.
func (ev *events) failed() error {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	return ev.err
}

// bareTimes are the bare calls' times, ms.
func (ev *events) bareTimes() []float64 {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	return append([]float64(nil), ev.bare...)
}

func p99(v []float64) float64 {
	sort.Float64s(v)
	return round(v[min(len(v)-1, len(v)*99/100)], 1)
}

func jobIndex(id, run string) (int, bool) {
	rest, ok := strings.CutPrefix(id, "bench-"+run+".")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	return n, err == nil
}

// measureWorkers reads each worker's CPU time and peak RSS from /proc.
func (b *bench) measureWorkers(rep *Report) {
	var peak float64
	for _, w := range b.workers {
		pid := w.Cmd.Process.Pid
		if d, err := cpuOf(pid); err == nil {
			rep.WorkerCPUSeconds += d.Seconds()
		}
		if status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
			for _, line := range strings.Split(string(status), "\n") {
				if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
					kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
					peak = max(peak, kb/1024)
				}
			}
		}
	}
	rep.WorkerCPUSeconds = round(rep.WorkerCPUSeconds, 2)
	rep.WorkerPeakRSSMB = round(peak, 1)
	if b.sink != nil {
		rep.TraceExports, rep.TraceExportBytes = b.sink.requests.Load(), b.sink.bytes.Load()
	}
}

func machine() string {
	model := "unknown CPU"
	if info, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(info), "\n") {
			if rest, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(rest), ":"))
				break
			}
		}
	}
	return fmt.Sprintf("%d × %s", numCPU(), model)
}

func numCPU() int { return runtime.NumCPU() }

func round(v float64, places int) float64 {
	p := 1.0
	for range places {
		p *= 10
	}
	return float64(int64(v*p+0.5)) / p
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
