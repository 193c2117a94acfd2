package loader

import (
	"fmt"
	"hash/maphash"
	"strconv"

	"github.com/mpaas-push/pushworker/job"
)

// Batcher collects rows into targetMsgs jobs (PushMultiple) of up to GroupSize
// targets, in file order, each target with its own row's template values. No row
// waits for others with the same values, so there is no window.
type Batcher struct {
	c      Campaign
	values templateValues
	first  int // line of the current job's first row
	msgs   []job.TargetMsg
	emit   func(*job.Job) error
}

// NewBatcher makes a batcher for template variables vars; emit receives each job.
func NewBatcher(c Campaign, vars []string, emit func(*job.Job) error) (*Batcher, error) {
	if c.GroupSize <= 0 {
		return nil, fmt.Errorf("group size must be positive")
	}
	tv, err := newTemplateValues(vars, c.Base.TemplateKeyValue)
	if err != nil {
		return nil, err
	}
	return &Batcher{c: c, values: tv, emit: emit}, nil
}

// Add takes one row.
func (b *Batcher) Add(r Row) error {
	if r.MsgKey == "" {
		r.MsgKey = DeriveMsgKey(b.c.ID, r.Target)
	}
	kvs, err := b.values.object(r.Values)
	if err != nil {
		return err
	}
	if len(b.msgs) == 0 {
		b.first = r.Line
		b.msgs = make([]job.TargetMsg, 0, b.c.GroupSize)
	}
	b.msgs = append(b.msgs, job.TargetMsg{Target: r.Target, MsgKey: r.MsgKey, TemplateKeyValue: kvs})
	if len(b.msgs) >= b.c.GroupSize {
		return b.Close()
	}
	return nil
}

// Close sends the job being filled, if any.
func (b *Batcher) Close() error {
	if len(b.msgs) == 0 {
		return nil
	}
	j := *b.c.Base
	j.JobID = MultipleJobID(b.c.ID, b.first)
	j.TemplateKeyValue = nil // each target carries the campaign's values merged with its own
	j.TargetMsgs = b.msgs
	b.msgs = nil
	return b.emit(&j)
}

// MultipleJobID is the id of the targetMsgs job whose first row is on line:
// <campaign>.m<line>. The same file always gives the same ids.
func MultipleJobID(campaign string, line int) string {
	return campaign + ".m" + strconv.Itoa(line)
}

// seenTargets remembers every target of a file by a 64-bit hash and the line it
// was first on, so that a repeat anywhere in the file is caught: about 36 bytes a
// target in Go's map (36 MiB for a million), less than the targets themselves. Two
// different targets share a hash with odds of about 1 in 37 million for a file
// of a million rows; the later one is then rejected, and the rejects file names
// both lines.
type seenTargets struct {
	seed  maphash.Seed
	lines map[uint64]int32
}

func newSeenTargets() *seenTargets {
	return &seenTargets{seed: maphash.MakeSeed(), lines: map[uint64]int32{}}
}

// first records target on line; if it was already seen it returns that line.
func (s *seenTargets) first(target string, line int) (int, bool) {
	h := maphash.String(s.seed, target)
	if at, ok := s.lines[h]; ok {
		return int(at), true
	}
	s.lines[h] = int32(line)
	return 0, false
}
