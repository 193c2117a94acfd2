package loader

import (
	"crypto/sha256"
	"fmt"
	"hash/maphash"

	"github.com/mpaas-push/pushworker/job"
)

// Batcher collects rows into targetMsgs jobs (PushMultiple) of up to GroupSize
// targets and MaxBytes bytes, in file order, each target with its own row's
// template values. No row waits for others with the same values, so there is no
// window.
type Batcher struct {
	c        Campaign
	values   templateValues
	overhead int // bytes of a job of this campaign with no targets
	first    int // line of the current job's first row
	size     int // bytes of the current job, at most
	msgs     []job.TargetMsg
	emit     func(*job.Job) error
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
	over, err := overhead(c.Base)
	if err != nil {
		return nil, err
	}
	return &Batcher{c: c, values: tv, overhead: over + len(`,"targetMsgs":[]`), emit: emit}, nil
}

// Add takes one row. A row that alone makes a job over MaxBytes is a *RowError:
// no job can carry it.
func (b *Batcher) Add(r Row) error {
	if r.MsgKey == "" {
		r.MsgKey = DeriveMsgKey(b.c.ID, r.Target)
	}
	kvs, err := b.values.object(r.Values)
	if err != nil {
		return err
	}
	m := job.TargetMsg{Target: r.Target, MsgKey: r.MsgKey, TemplateKeyValue: kvs}
	n := targetMsgLen(m)
	if b.c.MaxBytes > 0 && b.overhead+n > b.c.MaxBytes {
		return &RowError{Line: r.Line, Reason: fmt.Sprintf("the row makes a job of %d bytes or more, over the %d a job may have (the server's max_payload less %d for headers)",
			b.overhead+n, b.c.MaxBytes, HeaderRoom)}
	}
	if len(b.msgs) > 0 && b.c.MaxBytes > 0 && b.size+1+n > b.c.MaxBytes {
		if err := b.Close(); err != nil {
			return err
		}
	}
	if len(b.msgs) == 0 {
		b.first = r.Line
		b.size = b.overhead
		b.msgs = make([]job.TargetMsg, 0, min(b.c.GroupSize, 1024))
	} else {
		b.size++ // the comma
	}
	b.msgs = append(b.msgs, m)
	b.size += n
	if len(b.msgs) >= b.c.GroupSize {
		return b.Close()
	}
	return nil
}

// targetMsgLen is the length of m as job.Encode writes it in targetMsgs.
func targetMsgLen(m job.TargetMsg) int {
	n := len(`{"target":,"msgKey":}`) + quotedLen(m.Target) + quotedLen(m.MsgKey)
	if len(m.TemplateKeyValue) > 0 {
		n += len(`,"templateKeyValue":`) + len(m.TemplateKeyValue)
	}
	if len(m.ExtendedParams) > 0 {
		n += len(`,"extendedParams":`) + len(m.ExtendedParams)
	}
	return n
}

// Close sends the job being filled, if any.
func (b *Batcher) Close() error {
	if len(b.msgs) == 0 {
		return nil
	}
	j := *b.c.Base
	j.JobID = MultipleJobID(b.c.ID, b.first, b.msgs)
	j.TemplateKeyValue = nil // each target carries the campaign's values merged with its own
	j.TargetMsgs = b.msgs
	b.msgs = nil
	return b.emit(&j)
}

// MultipleJobID is the id of the targetMsgs job whose first row is on line:
// <campaign>.m<line>.<hash of its targets, msgKeys and values> (see contentID).
func MultipleJobID(campaign string, line int, msgs []job.TargetMsg) string {
	h := sha256.New()
	for _, m := range msgs {
		hashField(h, m.Target)
		hashField(h, m.MsgKey)
		hashField(h, string(m.TemplateKeyValue))
		hashField(h, string(m.ExtendedParams))
	}
	return contentID(campaign, "m", line, h)
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
