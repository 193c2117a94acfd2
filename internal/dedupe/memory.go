package dedupe

import (
	"context"
	"strings"
	"sync"
	"time"
)

// Memory is a Store in this process's memory, for dev mode: one worker, and
// nothing survives a restart.
type Memory struct {
	mu       sync.Mutex
	entries  map[Key]memEntry
	sentTTL  time.Duration
	leaseTTL time.Duration
	now      func() time.Time
}

type memEntry struct {
	value   string
	expires time.Time
}

// NewMemory makes an in-memory store.
func NewMemory(sentTTL, leaseTTL time.Duration) *Memory {
	if sentTTL <= 0 {
		sentTTL = DefaultSentTTL
	}
	if leaseTTL <= 0 {
		leaseTTL = DefaultLeaseTTL
	}
	return &Memory{entries: map[Key]memEntry{}, sentTTL: sentTTL, leaseTTL: leaseTTL, now: time.Now}
}

func (m *Memory) get(k Key) (string, bool) {
	e, ok := m.entries[k]
	if !ok || m.now().After(e.expires) {
		delete(m.entries, k)
		return "", false
	}
	return e.value, true
}

// Claim is the claim script's logic.
func (m *Memory) Claim(_ context.Context, h Holder, keys []Key) ([]Claim, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	claims := make([]Claim, len(keys))
	lease := memEntry{leaseValue(h), m.now().Add(m.leaseTTL)}
	sameMessage := "L|" + h.JobID + "|" + h.Message + "|"
	for i, k := range keys {
		v, ok := m.get(k)
		if !ok || strings.HasPrefix(v, sameMessage) && leaseDelivery(v) <= h.Delivery { // free, or this or an earlier delivery of this message
			m.entries[k] = lease
			continue
		}
		if strings.HasPrefix(v, sameMessage) {
			claims[i] = Claim{State: Superseded, Owner: h.JobID}
			continue
		}
		if rec, sent := strings.CutPrefix(v, "S|"); sent {
			claims[i] = withSelf(parseRecord(rec), h.JobID) // a sent pair keeps its call's record
		} else {
			claims[i] = parseLease(v)
		}
	}
	return claims, nil
}

// MarkSent records the marks; like Redis, a later mark replaces an earlier one.
func (m *Memory) MarkSent(_ context.Context, h Holder, keys []Key, mark Mark) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range keys {
		m.entries[k] = memEntry{"S|" + callRecord(h.JobID, mark), m.now().Add(m.sentTTL)}
	}
	return nil
}

// Release is the release script's logic.
func (m *Memory) Release(_ context.Context, h Holder, keys []Key) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	lease := leaseValue(h)
	for _, k := range keys {
		if v, ok := m.get(k); ok && v == lease {
			delete(m.entries, k)
		}
	}
	return nil
}
