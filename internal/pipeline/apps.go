package pipeline

import "context"

// AppLimiter is a Limiter that holds a limit per credential (a credentials
// file: ratelimit.Apps): each call waits on, and reports throttling to, the
// limit of the credential that serves its app.
type AppLimiter interface {
	Limiter
	// For returns the app's limiter; its type is a literal (Limiter's methods)
	// so that ratelimit.Apps implements it without importing this package.
	For(appID string) interface {
		Wait(ctx context.Context, event bool) error
		Throttled()
	}
	// Credential is the place (0 to Credentials()-1) of the credential that
	// serves appID, -1 for none.
	Credential(appID string) int
	Credentials() int
}

// LimiterFor is the limiter of a call for app: its credential's when l holds
// one per credential, else l itself.
func LimiterFor(l Limiter, app string) Limiter {
	if a, ok := l.(AppLimiter); ok {
		return a.For(app)
	}
	return l
}

// CredentialReserve is how many of a worker's call slots, of each lane's,
// every credential keeps from the others.
const CredentialReserve = 4

// credentialSlots cap each credential's calls in flight in this worker below
// the worker's slots. A call holds its slot while it waits for its
// credential's limit: without a cap, the calls of a credential that mPaaS
// throttles (slow, so they pile up) would hold every slot, and the other
// credentials' apps would slow down with it.
type credentialSlots struct {
	apps      AppLimiter
	all, bulk []chan struct{} // by credential
}

// newCredentialSlots is nil unless l holds several credentials' limits.
func newCredentialSlots(l Limiter, maxInFlight int) *credentialSlots {
	a, ok := l.(AppLimiter)
	if !ok || a.Credentials() < 2 {
		return nil
	}
	n := a.Credentials()
	capOf := func(slots int) int { return max(1, (slots+n-1)/n, slots-CredentialReserve*(n-1)) }
	all, bulk := capOf(maxInFlight), capOf(bulkSlots(maxInFlight))
	c := &credentialSlots{apps: a}
	for range n {
		c.all, c.bulk = append(c.all, make(chan struct{}, all)), append(c.bulk, make(chan struct{}, bulk))
	}
	return c
}

// acquire takes a call slot for r's next call: first a place among its
// credential's calls, then one of the worker's slots.
func (p *Pipeline) acquire(ctx context.Context, r *run) error {
	all, bulk := p.creds.of(r)
	if all == nil {
		return p.slots.Acquire(ctx, r.event)
	}
	taken := 0
	for _, c := range []chan struct{}{all, bulk} {
		if c == nil {
			continue
		}
		select {
		case c <- struct{}{}:
			taken++
		case <-ctx.Done():
			if taken > 0 {
				<-all
			}
			return ctx.Err()
		}
	}
	if err := p.slots.Acquire(ctx, r.event); err != nil {
		p.creds.leave(all, bulk)
		return err
	}
	return nil
}

// release gives back what acquire took.
func (p *Pipeline) release(r *run) {
	p.slots.Release(r.event)
	p.creds.leave(p.creds.of(r))
}

// of are the credential's places a call of r takes: all of them, and for a
// bulk call the bulk ones too; nil without credentials or for an app of none.
func (c *credentialSlots) of(r *run) (all, bulk chan struct{}) {
	if c == nil {
		return nil, nil
	}
	i := c.apps.Credential(r.j.AppID)
	if i < 0 || i >= len(c.all) {
		return nil, nil
	}
	if r.event {
		return c.all[i], nil
	}
	return c.all[i], c.bulk[i]
}

func (c *credentialSlots) leave(all, bulk chan struct{}) {
	if all != nil {
		<-all
	}
	if bulk != nil {
		<-bulk
	}
}
