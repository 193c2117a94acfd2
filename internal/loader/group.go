// Package loader turns a campaign file into push jobs on the bulk lane: CSV rows
// grouped by identical template values into jobs of up to a set number of
// targets, or JSON Lines of whole jobs; job ids derived from the campaign, so a
// rerun enqueues nothing new; published asynchronously with backpressure.
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
	ID        string   // job ids start with it: <ID>.<group hash>.<line of the job's first row>
	Base      *job.Job // campaign-wide parameters; TargetMsgkey empty
	GroupSize int      // targets per job
	Window    int      // rows held in open groups at most; the oldest group is flushed early past it
}

// Row is one target of a CSV campaign.
type Row struct {
	Line   int
	Target string
	MsgKey string   // "" derives one from the campaign and the target
	Values []string // template values, in the order of Grouper's variables
}

// Grouper collects rows into jobs: rows with the same template values share jobs
// of up to GroupSize targets. At most Window rows wait in open groups; past that
// the oldest group goes out early. The same rows in the same order always give the
// same jobs with the same ids.
type Grouper struct {
	c       Campaign
	vars    []string
	groups  map[string]*list.Element // key → element of order (*group)
	order   *list.List               // open groups, oldest first
	held    int
	emit    func(*job.Job) error
	baseKVs []kv
}

type group struct {
	first   int // line of the first row since the group last went out: it names the job
	key     string
	values  []string
	targets job.Targets
	seen    map[string]struct{} // built once the group is big; small groups are scanned
}

// seenLimit is the size from which a group keeps a map of its targets.
const seenLimit = 32

// has reports whether target is already in the group.
func (gr *group) has(target string) bool {
	if gr.seen != nil {
		_, ok := gr.seen[target]
		return ok
	}
	for _, t := range gr.targets {
		if t.Target == target {
			return true
		}
	}
	return false
}

func (gr *group) add(t job.Target) {
	gr.targets = append(gr.targets, t)
	switch {
	case gr.seen != nil:
		gr.seen[t.Target] = struct{}{}
	case len(gr.targets) >= seenLimit:
		gr.seen = make(map[string]struct{}, 2*len(gr.targets))
		for _, x := range gr.targets {
			gr.seen[x.Target] = struct{}{}
		}
	}
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
	g := &Grouper{c: c, vars: vars, groups: map[string]*list.Element{}, order: list.New(), emit: emit}
	if len(c.Base.TemplateKeyValue) > 0 {
		members, err := objectMembers(c.Base.TemplateKeyValue)
		if err != nil {
			return nil, fmt.Errorf("campaign templateKeyValue: %w", err)
		}
		g.baseKVs = members
	}
	return g, nil
}

// ErrDuplicateTarget is a row whose target is already in the same job.
type ErrDuplicateTarget struct{ Target string }

func (e ErrDuplicateTarget) Error() string {
	return fmt.Sprintf("target %q is already on an earlier row with the same template values", e.Target)
}

// Add takes one row. A row whose target repeats within its open group is refused.
func (g *Grouper) Add(r Row) error {
	if r.MsgKey == "" {
		r.MsgKey = DeriveMsgKey(g.c.ID, r.Target)
	}
	key := groupKey(r.Values)
	el, ok := g.groups[key]
	if !ok {
		el = g.order.PushBack(&group{key: key, values: r.Values, first: r.Line})
		g.groups[key] = el
	}
	gr := el.Value.(*group)
	if gr.has(r.Target) {
		return ErrDuplicateTarget{r.Target}
	}
	gr.add(job.Target{Target: r.Target, MsgKey: r.MsgKey})
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
	j.JobID = JobID(g.c.ID, gr.key, gr.first)
	j.TargetMsgkey = gr.targets
	kvs, err := g.templateValues(gr.values)
	if err != nil {
		return err
	}
	j.TemplateKeyValue = kvs
	return g.emit(&j)
}

// templateValues are the row's values under the header's names, then the
// campaign's own values for names the file does not have.
func (g *Grouper) templateValues(values []string) (job.Object, error) {
	if len(g.vars) == 0 && len(g.baseKVs) == 0 {
		return nil, nil
	}
	o := job.ObjectOf(g.vars, values)
	if len(g.baseKVs) == 0 {
		return o, nil
	}
	inFile := map[string]bool{}
	for _, name := range g.vars {
		inFile[name] = true
	}
	b := bytes.TrimSuffix(o, []byte("}"))
	for _, m := range g.baseKVs {
		if inFile[m.key] {
			continue
		}
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

// JobID is the id of a job of the group with key whose first row is on line: the
// campaign id, a hash of the template values and the line. The same file always
// gives the same ids, and no state is kept per group once it went out, so memory
// stays bounded whatever the file's size.
func JobID(campaign, key string, line int) string {
	sum := sha256.Sum256([]byte(key))
	return campaign + "." + hex.EncodeToString(sum[:6]) + "." + strconv.Itoa(line)
}

// DeriveMsgKey is the msgKey of a row that has none: the same campaign and target
// always give the same msgKey, so a rerun cannot push twice.
func DeriveMsgKey(campaign, target string) string {
	sum := sha256.Sum256([]byte(campaign + "\x00" + target))
	return campaign + "-" + hex.EncodeToString(sum[:10])
}
