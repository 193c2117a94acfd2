// Package testenv gives tests the real servers they run against: the machine's
// Redis, a redis-server of their own, an embedded NATS server with JetStream.
//
// A test that needs a server the machine lacks says so and skips; with CI set in
// the environment it fails instead, so that CI never passes without running it.
//
// It imports nothing of this project.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
)

// RedisAddr is the machine's Redis; REDIS_TEST_ADDR overrides it.
func RedisAddr() string {
	if a := os.Getenv("REDIS_TEST_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

// Unavailable skips the test, or fails it when CI is set.
func Unavailable(t testing.TB, what string, err error) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is required in CI and is not available: %v", what, err)
	}
	t.Skipf("%s is not available (%v): skipping; start it to run this test", what, err)
}

// Redis connects to the machine's Redis, or skips (fails in CI).
func Redis(t testing.TB) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: RedisAddr(), DialTimeout: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		Unavailable(t, "Redis at "+RedisAddr(), err)
	}
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// Prefix is a key prefix no other test uses; keys under it are deleted when the test ends.
func Prefix(t testing.TB, rdb redis.UniversalClient) string {
	t.Helper()
	p := "pushworker-test:" + ID() + ":"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		iter := rdb.Scan(ctx, 0, p+"*", 1000).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
	})
	return p
}

// ID is a short random id for names that must not collide between tests.
func ID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// DeleteStreams removes a test's streams from a shared server, with a context of
// its own: t.Context() is already canceled when cleanups run, and a stream left
// on the machine's server keeps its storage reserved.
func DeleteStreams(t testing.TB, js jetstream.JetStream, names ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, s := range names {
		if err := js.DeleteStream(ctx, s); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Errorf("deleting test stream %s: %v", s, err)
		}
	}
}
