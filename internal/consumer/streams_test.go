package consumer_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mpaas-push/pushworker/internal/consumer"
	"github.com/mpaas-push/pushworker/internal/testenv"
	"github.com/mpaas-push/pushworker/topology"
)

// The lanes' consumers have the documented settings; a worker starting on a
// topology that exists sends JetStream no create or update (concurrent updates
// of one stream crashed nats-server 2.9.10), and one whose settings changed
// updates what changed.
func TestEnsureSettingsAndNoUpdateWhenNothingChanged(t *testing.T) {
	ns := testenv.NATS(t)
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	var writes atomic.Int32
	for _, subject := range []string{"$JS.API.STREAM.CREATE.>", "$JS.API.STREAM.UPDATE.>", "$JS.API.CONSUMER.CREATE.>", "$JS.API.CONSUMER.DURABLE.CREATE.>"} {
		sub, err := nc.Subscribe(subject, func(*nats.Msg) { writes.Add(1) })
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Unsubscribe() })
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topo := topology.Default()
	def, bulk, err := consumer.Ensure(ctx, js, topo, consumer.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range []jetstream.Consumer{def, bulk} {
		got := c.CachedInfo().Config
		lane := topo.Lanes()[i]
		if got.Durable != lane.Consumer || got.FilterSubject != lane.Filter || got.AckPolicy != jetstream.AckExplicitPolicy ||
			got.AckWait != consumer.DefaultAckWait || got.MaxDeliver != consumer.DefaultMaxDeliver || got.MaxAckPending != consumer.DefaultMaxAckPending {
			t.Fatalf("lane %s: consumer %+v is not the documented one", lane.Name, got)
		}
	}
	_ = nc.Flush()
	first := writes.Load()
	if first == 0 {
		t.Fatal("the creates were not seen: the test watches the wrong subjects")
	}
	for range 3 {
		if _, _, err := consumer.Ensure(ctx, js, topo, consumer.Limits{}); err != nil {
			t.Fatal(err)
		}
	}
	_ = nc.Flush()
	if n := writes.Load(); n != first {
		t.Fatalf("workers starting on the existing topology sent %d creates or updates", n-first)
	}
	_, bulk, err = consumer.Ensure(ctx, js, topo, consumer.Limits{MaxDeliver: 9})
	if err != nil {
		t.Fatal(err)
	}
	if got := bulk.CachedInfo().Config.MaxDeliver; got != 9 {
		t.Fatalf("a changed setting must be applied: MaxDeliver %d", got)
	}
}
