package service_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mpaas-push/pushworker/internal/campaign"
	"github.com/mpaas-push/pushworker/internal/harness"
	"github.com/mpaas-push/pushworker/internal/testenv"
	"github.com/mpaas-push/pushworker/job"
)

// The whole worker (dedupe, the shared limit with its events share and
// adaptive rate, a campaign's pace, its totals) runs as the README's
// least-privilege Redis user, whose keys are the worker's prefix only: every
// key it writes is under the prefix.
func TestTheWholeWorkerRunsAsTheACLUser(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRedis(t)
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer admin.Close()
	ctx := context.Background()
	const prefix = "pushworker:"
	if err := admin.Do(ctx, "ACL", "SETUSER", "pusher", "on", ">acl-pass-7d2", "~"+prefix+"*", "+@all").Err(); err != nil {
		t.Fatal(err)
	}
	h := harness.New(t, harness.Setup{RedisAddr: srv.Addr()})
	h.StartWorker(func(w *harness.WorkerSetup) {
		w.Config.RedisPrefix = prefix
		w.Config.RateAdaptive = true
		rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), Username: "pusher", Password: "acl-pass-7d2"})
		t.Cleanup(func() { rdb.Close() })
		w.Options.Redis = rdb
	})
	kv, err := h.JS.KeyValue(ctx, h.Topo.CampaignsBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "acl", campaign.State{State: campaign.Running, TargetsPerSecond: 500, UpdatedAt: time.Now()}.Encode()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the worker applies the pace
	event, bulk := harness.NewJob("acl-event", "acl-e", 3), harness.NewJob("acl-bulk", "acl-b", 30)
	h.PublishJob(h.Topo.EventsSubject("orders"), event)
	h.PublishJob(h.Topo.BulkSubject("acl"), bulk)
	got := h.ResultsFor([]string{event.JobID, bulk.JobID}, 20*time.Second)
	for _, j := range []*job.Job{event, bulk} {
		if r := got[j.JobID]; r.Status != job.StatusSucceeded || r.Sent != j.TargetCount() {
			t.Fatalf("%s as the ACL user: %+v", j.JobID, r)
		}
	}
	keys, err := admin.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	var pace, limit, totals bool
	for _, k := range keys {
		if len(k) < len(prefix) || k[:len(prefix)] != prefix {
			t.Errorf("key %q outside the prefix %s", k, prefix)
		}
		switch k {
		case prefix + "pace:acl":
			pace = true
		case prefix + "rate:mpaas":
			limit = true
		case prefix + "campaign:acl":
			totals = true
		}
	}
	if !pace || !limit || !totals {
		t.Fatalf("the pace, the shared limit and the totals must be written: %v", keys)
	}
}
