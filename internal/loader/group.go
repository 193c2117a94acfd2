// Package loader turns a campaign file into push jobs on the bulk lane: CSV rows
// become targetMsgs jobs (PushMultiple: each target its own values, in file
// order) or are grouped by identical template values into targetMsgkey jobs
// (PushTemplate), of up to a set number of targets and bytes; JSON Lines hold
// whole jobs. Job ids derive from the campaign, the line and the job's content, so
// a rerun enqueues nothing new and another file of the campaign does not collide;
// jobs are published asynchronously with backpressure.
//
// It imports, of this project, only clock, retry, tracing and job: never a part of the worker.
package loader

import (
	"bytes"
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/mpaas-push/pushworker/job"
)

// Campaign is what every job of a campaign shares.
type Campaign struct {
	ID        string   // job ids start with it (see JobID and MultipleJobID)
	Base      *job.Job // campaign-wide parameters; no targets
	API       string   // job.APIMultiple (targetMsgs jobs) or job.APITemplate (grouped targetMsgkey jobs); "" is APITemplate
	GroupSize int      // targets per job
	MaxBytes  int      // a job's body at most (JobLimit of the server); 0: no limit
	Window    int      // PushTemplate: rows held in open groups at most; the oldest group is flushed early past it
}

// Row is one target of a CSV campaign.
type Row struct {
	Line   int
	Target string
	MsgKey string   // "" derives one from the campaign and the target
	Values []string // template values, in the order of Grouper's variables
}

// Grouper collects rows into jobs: rows with the same template values share jobs
// of up to GroupSize targets and MaxBytes bytes. At most Window rows wait in open groups; past that
// the oldest group goes out early. The same rows in the same order always give the
// same jobs with the same ids.
type Grouper struct {
	c        Campaign
	values   templateValues
	groups   map[string]*list.Element // key → element of order (*group)
	order    *list.List               // open groups, oldest first
	held     int
	overhead int // bytes of a job of this campaign with no targets and no values
	emit     func(*job.Job) error
}

type group struct {
	first   int // line of the first row since the group last went out: it names the job
	key     string
	kvs     job.Object // the group's template values
	size    int        // bytes of the group's job, at most
	targets job.Targets
}

type kv struct {
	key   string
	value json.RawMessage
}

// NewGrouper makes a grouper for template variables vars; emit receives each job.
func NewGrouper(c Campaign, vars []string, emit func(*job.Job) error) (*Grouper, error) {
	if c.GroupSize <= 0 || c.Window <= 0 {
		return nil, fmt.Errorf("group size and window must be positive")
	}
	tv, err := newTemplateValues(vars, c.Base.TemplateKeyValue)
	if err != nil {
		return nil, err
	}
	over, err := overhead(c.Base)
	if err != nil {
		return nil, err
	}
	return &Grouper{c: c, values: tv, groups: map[string]*list.Element{}, order: list.New(),
		overhead: over + len(`,"targetMsgkey":{}`), emit: emit}, nil
}

// Add takes one row. LoadCSV has already refused a target that repeats in the file.
// A row that alone makes a job over MaxBytes is a *RowError: no job can carry it.
func (g *Grouper) Add(r Row) error {
	if r.MsgKey == "" {
		r.MsgKey = DeriveMsgKey(g.c.ID, r.Target)
	}
	key := groupKey(r.Values)
	el, ok := g.groups[key]
	var kvs job.Object
	if ok {
		kvs = el.Value.(*group).kvs
	} else {
		var err error
		if kvs, err = g.values.object(r.Values); err != nil {
			return err
		}
	}
	pair := quotedLen(r.Target) + 1 + quotedLen(r.MsgKey)
	empty := g.overhead
	if len(kvs) > 0 {
		empty += len(`,"templateKeyValue":`) + len(kvs)
	}
	if g.c.MaxBytes > 0 && empty+pair > g.c.MaxBytes {
		return &RowError{Line: r.Line, Reason: fmt.Sprintf("the row makes a job of %d bytes or more, over the %d a job may have (the server's max_payload less %d for headers)",
			empty+pair, g.c.MaxBytes, HeaderRoom)}
	}
	if ok && g.c.MaxBytes > 0 && el.Value.(*group).size+1+pair > g.c.MaxBytes {
		if err := g.flush(el); err != nil {
			return err
		}
		ok = false
	}
	if !ok {
		el = g.order.PushBack(&group{key: key, kvs: kvs, first: r.Line, size: empty - 1}) // -1: the first pair has no comma
		g.groups[key] = el
	}
	gr := el.Value.(*group)
	gr.targets = append(gr.targets, job.Target{Target: r.Target, MsgKey: r.MsgKey})
	gr.size += 1 + pair
	g.held++
	if len(gr.targets) >= g.c.GroupSize {
		if err := g.flush(el); err != nil {
			return err
		}
	}
	for g.held > g.c.Window {
		if err := g.flush(g.order.Front()); err != nil {
			return err
		}
	}
	return nil
}

// Close flushes every open group, oldest first.
func (g *Grouper) Close() error {
	for g.order.Len() > 0 {
		if err := g.flush(g.order.Front()); err != nil {
			return err
		}
	}
	return nil
}

func (g *Grouper) flush(el *list.Element) error {
	gr := el.Value.(*group)
	g.order.Remove(el)
	delete(g.groups, gr.key)
	g.held -= len(gr.targets)
	j := *g.c.Base
	j.JobID = JobID(g.c.ID, gr.first, gr.kvs, gr.targets)
	j.TargetMsgkey = gr.targets
	j.TemplateKeyValue = gr.kvs
	return g.emit(&j)
}

// templateValues builds a row's template values: the row's values under the
// header's names, then the campaign's own values for names the file does not have.
type templateValues struct {
	vars []string
	base []kv // the campaign's values for names the file does not have
}

func newTemplateValues(vars []string, campaign job.Object) (templateValues, error) {
	tv := templateValues{vars: vars}
	if len(campaign) == 0 {
		return tv, nil
	}
	members, err := objectMembers(campaign)
	if err != nil {
		return tv, fmt.Errorf("campaign templateKeyValue: %w", err)
	}
	inFile := map[string]bool{}
	for _, name := range vars {
		inFile[name] = true
	}
	for _, m := range members {
		if !inFile[m.key] {
			tv.base = append(tv.base, m)
		}
	}
	return tv, nil
}

func (tv templateValues) object(values []string) (job.Object, error) {
	if len(tv.vars) == 0 && len(tv.base) == 0 {
		return nil, nil
	}
	o := job.ObjectOf(tv.vars, values)
	if len(tv.base) == 0 {
		return o, nil
	}
	b := bytes.TrimSuffix(o, []byte("}"))
	for _, m := range tv.base {
		if len(b) > 1 {
			b = append(b, ',')
		}
		key, err := json.Marshal(m.key)
		if err != nil {
			return nil, err
		}
		b = append(append(append(b, key...), ':'), m.value...)
	}
	return job.Object(append(b, '}')), nil
}

func objectMembers(o job.Object) ([]kv, error) {
	dec := json.NewDecoder(bytes.NewReader(o))
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	var out []kv
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		out = append(out, kv{tok.(string), v})
	}
	return out, nil
}

// groupKey identifies identical template values; length prefixes keep ("a,b")
// apart from ("a","b").
func groupKey(values []string) string {
	var b bytes.Buffer
	for _, v := range values {
		b.WriteString(strconv.Itoa(len(v)))
		b.WriteByte(':')
		b.WriteString(v)
	}
	return b.String()
}

// JobID is the id of a targetMsgkey job whose first row is on line:
// <campaign>.t<line>.<hash of its template values, targets and msgKeys> (see
// contentID). No state is kept per group once it went out, so memory stays
// bounded whatever the file's size.
func JobID(campaign string, line int, values job.Object, targets job.Targets) string {
	h := sha256.New()
	hashField(h, string(values))
	for _, t := range targets {
		hashField(h, t.Target)
		hashField(h, t.MsgKey)
	}
	return contentID(campaign, "t", line, h)
}

// DeriveMsgKey is the msgKey of a row that has none: the same campaign and target
// always give the same msgKey, so a rerun cannot push twice.
func DeriveMsgKey(campaign, target string) string {
	sum := sha256.Sum256([]byte(campaign + "\x00" + target))
	return campaign + "-" + hex.EncodeToString(sum[:10])
}
