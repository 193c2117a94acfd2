package dedupe_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mpaas-push/pushworker/internal/dedupe"
	"github.com/mpaas-push/pushworker/internal/testenv"
)

func keys(n int, tag string) []dedupe.Key {
	out := make([]dedupe.Key, n)
	for i := range out {
		out[i] = dedupe.Key{AppID: "app", WorkspaceID: "ws", Target: fmt.Sprintf("%s-u%d", tag, i), MsgKey: "m"}
	}
	return out
}

// h is a holder of message "m1" of the job.
func h(jobID, token string) dedupe.Holder {
	return dedupe.Holder{JobID: jobID, Message: "m1", Token: token}
}

func stores(t *testing.T) map[string]dedupe.Store {
	rdb := testenv.Redis(t)
	r := dedupe.NewRedis(rdb, dedupe.RedisConfig{Prefix: testenv.Prefix(t, rdb), LeaseTTL: 2 * time.Second})
	if err := r.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	return map[string]dedupe.Store{"redis": r, "memory": dedupe.NewMemory(0, 2*time.Second)}
}

func states(cs []dedupe.Claim) []dedupe.State {
	out := make([]dedupe.State, len(cs))
	for i, c := range cs {
		out[i] = c.State
	}
	return out
}

func TestStoreContract(t *testing.T) {
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) { contract(t, s, name) })
	}
}

// The store contract on a Redis Cluster (3 masters, 3 replicas: the keys of one
// call are on several masters) and behind Sentinel.
func TestStoreContractOnClusterAndSentinel(t *testing.T) {
	cluster := testenv.StartRedisCluster(t)
	sentinel := testenv.StartRedisSentinel(t)
	for name, rdb := range map[string]redis.UniversalClient{"cluster": cluster.Client(), "sentinel": sentinel.Client()} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s := dedupe.NewRedis(rdb, dedupe.RedisConfig{Prefix: "pw:", LeaseTTL: 2 * time.Second})
			if err := s.Load(ctx); err != nil {
				t.Fatal(err)
			}
			contract(t, s, name)
			// A claim window and a call's marks across slots, in one batch each.
			k := keys(50, name+"-wide")
			if c, err := s.Claim(ctx, h("job-w", "t1"), k); err != nil || states(c)[49] != dedupe.Claimed {
				t.Fatalf("wide claim: %v %v", err, c)
			}
			if err := s.MarkSent(ctx, h("job-w", "t1"), k, dedupe.Mark{RequestID: "REQ-W", Attempts: 1}); err != nil {
				t.Fatal(err)
			}
			c, err := s.Claim(ctx, h("job-w", "t2"), k)
			if err != nil {
				t.Fatal(err)
			}
			for i, cl := range c {
				if cl.State != dedupe.SentBySelf || cl.Mark.RequestID != "REQ-W" {
					t.Fatalf("pair %d after the marks: %+v", i, cl)
				}
			}
		})
	}
}

func contract(t *testing.T, s dedupe.Store, name string) {
	t.Helper()
	ctx := context.Background()
	k := keys(3, name)

	c, err := s.Claim(ctx, h("job-a", "tok1"), k)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(states(c)) != fmt.Sprint([]dedupe.State{dedupe.Claimed, dedupe.Claimed, dedupe.Claimed}) {
		t.Fatalf("first claim: %v", states(c))
	}
	// Another job sees the leases.
	c, _ = s.Claim(ctx, h("job-b", "tok9"), k[:1])
	if c[0].State != dedupe.LeasedByOther || c[0].Owner != "job-a" {
		t.Fatalf("other job during the lease: %+v", c[0])
	}
	// job-a's call sent k[0]; k[1] failed and is released; k[2] stays leased.
	mark := dedupe.Mark{RequestID: "REQ-1", Attempts: 2, Data: "task-9"}
	if err := s.MarkSent(ctx, h("job-a", "tok1"), k[:1], mark); err != nil {
		t.Fatal(err)
	}
	if err := s.Release(ctx, h("job-a", "tok1"), k[1:2]); err != nil {
		t.Fatal(err)
	}
	// A release with a stale token does nothing.
	if err := s.Release(ctx, h("job-a", "old-token"), k[2:]); err != nil {
		t.Fatal(err)
	}

	c, _ = s.Claim(ctx, h("job-b", "tok9"), k)
	if c[0].State != dedupe.SentByOther || c[0].Owner != "job-a" {
		t.Fatalf("sent pair for another job: %+v", c[0])
	}
	if c[1].State != dedupe.Claimed {
		t.Fatalf("released pair: %+v", c[1])
	}
	if c[2].State != dedupe.LeasedByOther {
		t.Fatalf("a stale-token release must not free the lease: %+v", c[2])
	}

	// A redelivery of job-a (new token): its sent pair is reported with the
	// mark, and its old lease is taken over.
	c, _ = s.Claim(ctx, h("job-a", "tok2"), []dedupe.Key{k[0], k[2]})
	if c[0].State != dedupe.SentBySelf || c[0].Mark != mark {
		t.Fatalf("sent by self: %+v", c[0])
	}
	if c[1].State != dedupe.Claimed {
		t.Fatalf("takeover of the same job's lease: %+v", c[1])
	}
	// The old delivery's token no longer releases it.
	_ = s.Release(ctx, h("job-a", "tok1"), k[2:])
	c, _ = s.Claim(ctx, h("job-c", "t"), k[2:])
	if c[0].State != dedupe.LeasedByOther {
		t.Fatalf("after takeover the old token must not release: %+v", c[0])
	}
	// A pair two jobs both sent keeps the later mark.
	_ = s.MarkSent(ctx, h("job-z", "t"), k[:1], dedupe.Mark{RequestID: "REQ-2"})
	c, _ = s.Claim(ctx, h("job-a", "tok3"), k[:1])
	if c[0].State != dedupe.SentByOther || c[0].Owner != "job-z" {
		t.Fatalf("the later mark must win: %+v", c[0])
	}
}

func TestLeaseExpires(t *testing.T) {
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			k := keys(1, "exp-"+name)
			_, _ = s.Claim(ctx, h("job-a", "t"), k)
			time.Sleep(2100 * time.Millisecond) // the stores' lease is 2 s
			c, _ := s.Claim(ctx, h("job-b", "t"), k)
			if c[0].State != dedupe.Claimed {
				t.Fatalf("a crashed worker's lease must expire: %+v", c[0])
			}
		})
	}
}

// Many deliveries racing for the same pairs: each pair is claimed exactly once.
func TestConcurrentClaimsAreExclusive(t *testing.T) {
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			k := keys(10, "race-"+name)
			var mu sync.Mutex
			won := map[string]int{}
			var wg sync.WaitGroup
			for w := range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c, err := s.Claim(context.Background(), h(fmt.Sprintf("job-%d", w), "t"), k)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					defer mu.Unlock()
					for i, cl := range c {
						if cl.State == dedupe.Claimed {
							won[k[i].Target]++
						}
					}
				}()
			}
			wg.Wait()
			for _, key := range k {
				if won[key.Target] != 1 {
					t.Fatalf("%s claimed %d times", key.Target, won[key.Target])
				}
			}
		})
	}
}

func TestScriptsReloadAfterNoScript(t *testing.T) {
	srv := testenv.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	s := dedupe.NewRedis(rdb, dedupe.RedisConfig{})
	ctx := context.Background()
	if err := s.Load(ctx); err != nil {
		t.Fatal(err)
	}
	k := keys(5, "noscript")
	if _, err := s.Claim(ctx, h("job-a", "t"), k); err != nil {
		t.Fatal(err)
	}
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	// The keys are held: this claim goes through the claim script, which Redis lost.
	c, err := s.Claim(ctx, h("job-b", "t"), k)
	if err != nil || len(c) != 5 || c[0].State != dedupe.LeasedByOther {
		t.Fatalf("claim after SCRIPT FLUSH: %v %v", c, err)
	}
}

func TestRedisDownIsUnavailable(t *testing.T) {
	srv := testenv.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer rdb.Close()
	s := dedupe.NewRedis(rdb, dedupe.RedisConfig{})
	srv.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := s.Claim(ctx, h("job", "t"), keys(2, "down")); !errors.Is(err, dedupe.ErrUnavailable) {
		t.Fatalf("want ErrUnavailable, got %v", err)
	}
}

// The same job published twice is two messages: a copy running at the same time
// must not take over the other's lease, while a redelivery of one message does.
func TestSameJobOtherMessageDoesNotTakeOver(t *testing.T) {
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			k := keys(2, "copy-"+name)
			first := dedupe.Holder{JobID: "job-a", Message: "seq-1", Delivery: 1, Token: "t1"}
			if _, err := s.Claim(ctx, first, k); err != nil {
				t.Fatal(err)
			}
			copyOf := dedupe.Holder{JobID: "job-a", Message: "seq-2", Delivery: 1, Token: "t2"}
			c, _ := s.Claim(ctx, copyOf, k[:1])
			if c[0].State != dedupe.LeasedByOther {
				t.Fatalf("a copy of the job on another message took over the lease: %+v", c[0])
			}
			redelivery := dedupe.Holder{JobID: "job-a", Message: "seq-1", Delivery: 2, Token: "t3"}
			c, _ = s.Claim(ctx, redelivery, k[:1])
			if c[0].State != dedupe.Claimed {
				t.Fatalf("a redelivery of the same message must take over: %+v", c[0])
			}
			// Once sent, every copy of the job sees it as its own.
			_ = s.MarkSent(ctx, redelivery, k[:1], dedupe.Mark{RequestID: "R"})
			c, _ = s.Claim(ctx, copyOf, k[:1])
			if c[0].State != dedupe.SentBySelf {
				t.Fatalf("a copy must see its job's sent mark: %+v", c[0])
			}
		})
	}
}

// A delivery that JetStream gave up on while it still ran (its worker frozen or
// starved past the AckWait) never takes its pairs back from the later delivery
// that took them over: it learns that it is superseded, on a new claim and on
// claiming again what it held. A later delivery still takes over from it.
func TestEarlierDeliveryIsSuperseded(t *testing.T) {
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			k := keys(3, "superseded-"+name)
			d1 := dedupe.Holder{JobID: "job-s", Message: "7", Delivery: 1, Token: "a"}
			d2 := dedupe.Holder{JobID: "job-s", Message: "7", Delivery: 2, Token: "b"}
			d3 := dedupe.Holder{JobID: "job-s", Message: "7", Delivery: 3, Token: "c"}
			if c, _ := s.Claim(ctx, d1, k[:2]); c[0].State != dedupe.Claimed || c[1].State != dedupe.Claimed {
				t.Fatalf("first claim: %+v", c)
			}
			if c, _ := s.Claim(ctx, d2, k); c[0].State != dedupe.Claimed || c[2].State != dedupe.Claimed {
				t.Fatalf("the later delivery takes over: %+v", c)
			}
			c, err := s.Claim(ctx, d1, k)
			if err != nil {
				t.Fatal(err)
			}
			for i, cl := range c {
				if cl.State != dedupe.Superseded {
					t.Fatalf("pair %d: the earlier delivery must learn it is superseded, got %+v", i, cl)
				}
			}
			// Its release leaves the later delivery's leases alone.
			if err := s.Release(ctx, d1, k); err != nil {
				t.Fatal(err)
			}
			if c, _ := s.Claim(ctx, dedupe.Holder{JobID: "other", Message: "9", Delivery: 1, Token: "x"}, k[:1]); c[0].State != dedupe.LeasedByOther || c[0].Owner != "job-s" {
				t.Fatalf("the later delivery's lease must stay: %+v", c[0])
			}
			if c, _ := s.Claim(ctx, d3, k); c[1].State != dedupe.Claimed {
				t.Fatalf("a still later delivery takes over: %+v", c)
			}
			_ = s.Release(ctx, d3, k)
		})
	}
}

// A lease written before leases carried their delivery's number reads as
// delivery 0: any delivery of the same message takes it over, as before.
func TestLeaseOfTheOldLayoutIsTakenOver(t *testing.T) {
	rdb := testenv.Redis(t)
	prefix := testenv.Prefix(t, rdb)
	s := dedupe.NewRedis(rdb, dedupe.RedisConfig{Prefix: prefix})
	ctx := context.Background()
	k := keys(1, "old-lease")
	d1 := dedupe.Holder{JobID: "job-o", Message: "3", Delivery: 1, Token: "n"}
	if _, err := s.Claim(ctx, d1, k); err != nil {
		t.Fatal(err)
	}
	names, err := rdb.Keys(ctx, prefix+"*").Result()
	if err != nil || len(names) != 1 {
		t.Fatalf("keys: %v %v", names, err)
	}
	if err := rdb.Set(ctx, names[0], "L|job-o|3|5f3a9c0d11e2b7aa", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if c, _ := s.Claim(ctx, d1, k); c[0].State != dedupe.Claimed {
		t.Fatalf("an old lease of the same message must be taken over: %+v", c[0])
	}
	if v := rdb.Get(ctx, names[0]).Val(); v != "L|job-o|3|d1-n" {
		t.Fatalf("lease value %q", v)
	}
}

// A sent pair costs Redis one short key holding an integer (no string of its
// own); the call's job id and request id are one field of an hourly hash.
func TestRedisLayoutIsSmall(t *testing.T) {
	rdb := testenv.Redis(t)
	prefix := testenv.Prefix(t, rdb)
	s := dedupe.NewRedis(rdb, dedupe.RedisConfig{Prefix: prefix})
	ctx := context.Background()
	k := keys(10, "layout")
	holder := h("job-layout-with-a-long-id-0001", "tok")
	if _, err := s.Claim(ctx, holder, k); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkSent(ctx, holder, k, dedupe.Mark{RequestID: "7F3C2B1A-0000-4000-8000-1234567890AB", Attempts: 1}); err != nil {
		t.Fatal(err)
	}
	names, err := rdb.Keys(ctx, prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	var pairs, hashes int
	var hash string
	for _, name := range names {
		rest := name[len(prefix):]
		switch {
		case len(rest) == 12:
			pairs++
			if enc := rdb.ObjectEncoding(ctx, name).Val(); enc != "int" {
				t.Errorf("a sent pair's value is stored as %q, want int", enc)
			}
			if ttl := rdb.PTTL(ctx, name).Val(); ttl < 71*time.Hour {
				t.Errorf("a sent pair expires in %v, want the sent TTL", ttl)
			}
		case strings.HasPrefix(rest, "r:"):
			hashes++
			hash = name
			if ttl := rdb.PTTL(ctx, name).Val(); ttl < 72*time.Hour || ttl > 73*time.Hour {
				t.Errorf("the records' hash expires in %v, want the sent TTL after the end of the hour", ttl)
			}
		default:
			t.Errorf("unexpected key %q", name)
		}
	}
	if pairs != 10 || hashes != 1 {
		t.Fatalf("%d pair keys and %d record hashes, want 10 and 1", pairs, hashes)
	}
	records := rdb.HGetAll(ctx, hash).Val()
	if len(records) != 1 {
		t.Fatalf("%d records, want the call's one", len(records))
	}
	for _, v := range records {
		if !strings.Contains(v, "job-layout-with-a-long-id-0001") || !strings.Contains(v, "7F3C2B1A") {
			t.Errorf("call record %q: want the job id and the request id", v)
		}
	}
	// The same job's redelivery reads the mark back through the record.
	c, err := s.Claim(ctx, dedupe.Holder{JobID: holder.JobID, Message: "m2", Token: "tok2"}, k[:2])
	if err != nil {
		t.Fatal(err)
	}
	if c[0].State != dedupe.SentBySelf || c[0].Mark.RequestID != "7F3C2B1A-0000-4000-8000-1234567890AB" || c[0].Mark.Attempts != 1 {
		t.Fatalf("redelivery: %+v", c[0])
	}
	// A record that is gone leaves the pair sent: never pushed again.
	rdb.Del(ctx, hash)
	c, _ = s.Claim(ctx, h("job-other", "tok3"), k[:1])
	if c[0].State != dedupe.SentByOther {
		t.Fatalf("a pair whose call record is gone: %+v, want sent by another", c[0])
	}
}

// Many calls share few record hashes, each call its own field.
func TestCallRecordsShareHashes(t *testing.T) {
	rdb := testenv.Redis(t)
	prefix := testenv.Prefix(t, rdb)
	s := dedupe.NewRedis(rdb, dedupe.RedisConfig{Prefix: prefix})
	ctx := context.Background()
	const calls = 3000
	for i := range calls {
		k := []dedupe.Key{{AppID: "a", WorkspaceID: "w", Target: "u" + strconv.Itoa(i), MsgKey: "m"}}
		if err := s.MarkSent(ctx, h("job-"+strconv.Itoa(i), "t"), k, dedupe.Mark{RequestID: "R" + strconv.Itoa(i), Attempts: 1}); err != nil {
			t.Fatal(err)
		}
	}
	hashes, _ := rdb.Keys(ctx, prefix+"r:*").Result()
	fields := 0
	for _, name := range hashes {
		fields += int(rdb.HLen(ctx, name).Val())
	}
	if fields != calls || len(hashes) > 1024*2 {
		t.Fatalf("%d records in %d hashes, want %d in at most 2 hours' 1,024 shards", fields, len(hashes), calls)
	}
	c, _ := s.Claim(ctx, h("job-77", "t2"), []dedupe.Key{{AppID: "a", WorkspaceID: "w", Target: "u77", MsgKey: "m"}})
	if c[0].State != dedupe.SentBySelf || c[0].Mark.RequestID != "R77" {
		t.Fatalf("the 77th call's pair: %+v", c[0])
	}
}

// After an upgrade, with OldPrefix set, a pair the earlier layout marked sent
// (or leased) is not claimed; one it does not know is.
func TestOldLayoutIsHonored(t *testing.T) {
	rdb := testenv.Redis(t)
	prefix := testenv.Prefix(t, rdb)
	ctx := context.Background()
	k := keys(3, "old")
	// What the earlier version wrote: prefix + 32 hex digits of the same hash.
	oldName := func(k dedupe.Key) string { return prefix + "dedupe:" + hex.EncodeToString(pairHash(k)[:16]) }
	rdb.Set(ctx, oldName(k[0]), "S|job-old|REQ-OLD|2|task-1", time.Hour)
	rdb.Set(ctx, oldName(k[1]), "L|job-busy|17|tok", time.Minute)

	s := dedupe.NewRedis(rdb, dedupe.RedisConfig{Prefix: prefix + "d:", OldPrefix: prefix + "dedupe:"})
	c, err := s.Claim(ctx, h("job-new", "t1"), k)
	if err != nil {
		t.Fatal(err)
	}
	if c[0].State != dedupe.SentByOther || c[0].Owner != "job-old" || c[1].State != dedupe.LeasedByOther || c[2].State != dedupe.Claimed {
		t.Fatalf("claims: %+v", c)
	}
	// The old job's redelivery sees its own mark.
	c, _ = s.Claim(ctx, h("job-old", "t2"), k[:1])
	if c[0].State != dedupe.SentBySelf || c[0].Mark.RequestID != "REQ-OLD" || c[0].Mark.Attempts != 2 {
		t.Fatalf("the old job's own pair: %+v", c[0])
	}
	// No lease of the new layout is left on the pairs the old one knows.
	if n := rdb.Exists(ctx, prefix+"d:"+string(pairHash(k[0])[:12])).Val(); n != 0 {
		t.Fatal("a lease was left on a pair sent before the upgrade")
	}
	// Without OldPrefix the old marks are not read.
	plain := dedupe.NewRedis(rdb, dedupe.RedisConfig{Prefix: prefix + "p:"})
	if c, _ := plain.Claim(ctx, h("job-new", "t3"), k[:1]); c[0].State != dedupe.Claimed {
		t.Fatalf("without OldPrefix: %+v", c[0])
	}
}

// pairHash is the hash both layouts name a pair by, computed here on its own.
func pairHash(k dedupe.Key) []byte {
	in := ""
	for _, f := range []string{k.AppID, k.WorkspaceID, k.Target, k.MsgKey} {
		in += strconv.Itoa(len(f)) + ":" + f
	}
	sum := sha256.Sum256([]byte(in))
	return sum[:]
}
