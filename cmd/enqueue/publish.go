package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mpaas-push/pushworker/job"
	"github.com/mpaas-push/pushworker/producer"
	"github.com/mpaas-push/pushworker/topology"
)

func publishFlags(fs *flag.FlagSet) command {
	subject := fs.String("subject", topology.Default().EventsSubject("default"), "subject of the jobs (push.jobs.NAME or push.jobs.bulk.NAME…)")
	wait := fs.Bool("wait", false, "wait for every job's result and print it")
	timeout := fs.Duration("timeout", 2*time.Minute, "with --wait: how long to wait for the results")
	return command{run: func(e *env, files []string) error {
		if len(files) == 0 {
			return usageError{"name at least one FILE (- for standard input)"}
		}
		return e.publish(*subject, files, *wait, *timeout)
	}}
}

// publish validates and publishes the jobs of files through the producer package;
// with wait it prints each job's result and fails unless every job succeeded.
func (e *env) publish(subject string, files []string, wait bool, timeout time.Duration) error {
	if e.topo.Lane(subject) == "" {
		return fmt.Errorf("--subject %q: want push.jobs.NAME (default lane) or push.jobs.bulk.NAME… (bulk lane)", subject)
	}
	jobs, bad := e.readJobs(files)
	if len(jobs) == 0 {
		return fmt.Errorf("no valid job to publish (%d rejected)", bad)
	}
	return e.publishJobs(subject, jobs, bad, wait, timeout)
}

// publishJobs publishes valid jobs (bad others were rejected before) and, with
// wait, prints each job's result and fails unless every job succeeded.
func (e *env) publishJobs(subject string, jobs []*job.Job, bad int, wait bool, timeout time.Duration) error {
	p, err := producer.New(e.nc, producer.WithTopology(e.topo))
	if err != nil {
		return err
	}
	var results jetstream.Consumer
	if wait {
		// Listen before publishing, so that no result is missed.
		results, err = e.js.OrderedConsumer(e.ctx, e.topo.ResultsStream, jetstream.OrderedConsumerConfig{
			DeliverPolicy: jetstream.DeliverNewPolicy})
		if err != nil {
			return fmt.Errorf("reading %s (has a worker run against this server yet?): %w", e.topo.ResultsStream, err)
		}
	}
	var waiting []*job.Job
	for _, j := range jobs {
		ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
		duplicate, err := p.PublishTo(ctx, subject, j)
		cancel()
		if err != nil {
			return err
		}
		if !duplicate {
			fmt.Fprintf(e.stderr, "published %s to %s, %d targets\n", j.JobID, subject, j.TargetCount())
			waiting = append(waiting, j)
			continue
		}
		fmt.Fprintf(e.stderr, "not published again: the job stream already had %s (same job id within its duplicate window)\n", j.JobID)
		if wait && !e.printEarlierResult(j) {
			bad++
		}
	}
	if !wait {
		if bad > 0 {
			return exitError{1}
		}
		return nil
	}
	return e.waitResults(results, waiting, timeout, bad)
}

// printResult prints a result and reports whether the job did not succeed.
func (e *env) printResult(r *job.Result) (failed bool) {
	out, _ := json.MarshalIndent(r, "", "  ")
	fmt.Fprintf(e.stdout, "%s\n", out)
	return r.Status != job.StatusSucceeded
}

// storedResult is the result the result stream keeps for j, when it is the last
// one on j's result subject.
func (e *env) storedResult(j *job.Job) (*job.Result, bool) {
	r, err := e.ops.ResultOn(e.ctx, j.ReplyTo, j.JobID)
	return r, err == nil
}

// printEarlierResult prints the result a duplicate job already has.
func (e *env) printEarlierResult(j *job.Job) bool {
	if r, ok := e.storedResult(j); ok {
		return !e.printResult(r)
	}
	fmt.Fprintf(e.stderr, "no earlier result of %s found: give the job a new jobId to send it again\n", j.JobID)
	return false
}

func (e *env) waitResults(results jetstream.Consumer, jobs []*job.Job, timeout time.Duration, bad int) error {
	want := map[string]bool{}
	for _, j := range jobs {
		want[j.JobID] = true
	}
	deadline := time.Now().Add(timeout)
	failed := bad > 0
	for len(want) > 0 {
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("no result within %s for %d job(s): is a worker running?", timeout, len(want))
		}
		m, err := results.Next(jetstream.FetchMaxWait(min(left, 5*time.Second)))
		if err != nil {
			if e.ctx.Err() != nil {
				return e.ctx.Err()
			}
			// A job id reused inside the result stream's duplicate window gets no new
			// stored result: show the one the stream keeps for it.
			for _, j := range jobs {
				if want[j.JobID] {
					if r, ok := e.storedResult(j); ok {
						delete(want, j.JobID)
						failed = e.printResult(r) || failed
					}
				}
			}
			continue
		}
		var r job.Result
		if err := json.Unmarshal(m.Data(), &r); err != nil || !want[r.JobID] {
			continue
		}
		delete(want, r.JobID)
		failed = e.printResult(&r) || failed
	}
	if failed {
		return exitError{1}
	}
	return nil
}

// readJobs reads, decodes and validates every job; bad ones are reported with
// their file and line and left out.
func (e *env) readJobs(files []string) (jobs []*job.Job, bad int) {
	for _, name := range files {
		var data []byte
		var err error
		if name == "-" {
			data, err = io.ReadAll(e.stdin)
		} else {
			data, err = os.ReadFile(name)
		}
		if err != nil {
			fmt.Fprintf(e.stderr, "%s: %v\n", name, err)
			bad++
			continue
		}
		for _, rec := range records(data) {
			if rec.err != nil {
				fmt.Fprintf(e.stderr, "%s:%d:%d: %v\n", name, rec.line, rec.col, rec.err)
				bad++
				continue
			}
			j, err := job.Decode(rec.body)
			if err == nil {
				err = j.Validate(job.Rules{Topology: e.topo})
			}
			if err != nil {
				fmt.Fprintf(e.stderr, "%s:%d: %v\n", name, rec.line, err)
				bad++
				continue
			}
			if j.JobID == "" {
				j.JobID = producer.NewJobID()
			}
			jobs = append(jobs, j)
		}
	}
	return jobs, bad
}

type record struct {
	line int
	body []byte
	col  int   // with err
	err  error // the file is one JSON object that does not parse, at line:col
}

// records splits a job file. A file whose first non-space character is '{' and
// that parses whole as one JSON value is one job, however many lines it spans.
// Otherwise, a file whose first non-blank line is a complete JSON value is JSON
// Lines: each non-blank line a job. A file that starts with '{' and is neither
// is one object with a syntax error, reported once at its line and column.
func records(data []byte) []record {
	trimmed := bytes.TrimSpace(data)
	if json.Valid(trimmed) {
		return []record{{line: 1, body: trimmed}}
	}
	var lines []record
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for n := 1; sc.Scan(); n++ {
		if line := bytes.TrimSpace(sc.Bytes()); len(line) > 0 {
			lines = append(lines, record{line: n, body: append([]byte(nil), line...)})
		}
	}
	if len(lines) > 0 && bytes.HasPrefix(trimmed, []byte("{")) && !json.Valid(lines[0].body) {
		line, col, err := syntaxError(data)
		return []record{{line: line, col: col, err: err}}
	}
	return lines
}

// syntaxError is where data stops being JSON: a 1-based line and column (in
// characters) and the decoder's error, which quotes one character at most.
func syntaxError(data []byte) (line, col int, err error) {
	var v json.RawMessage
	err = json.Unmarshal(data, &v)
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		return 1, 1, err
	}
	at := max(0, min(int(se.Offset)-1, len(data))) // Offset is just past the byte that failed
	if strings.HasPrefix(se.Error(), "unexpected end") {
		at = len(bytes.TrimRight(data, " \t\r\n")) // just after the last thing written
	}
	before := data[:at]
	line = 1 + bytes.Count(before, []byte("\n"))
	return line, 1 + utf8.RuneCount(before[bytes.LastIndexByte(before, '\n')+1:]), se
}
