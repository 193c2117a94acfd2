package connect

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// FollowFailovers makes a cluster client reload its map of slots to nodes as
// soon as a command cannot reach a node, or a node says the cluster is down.
// go-redis reloads the map when a node answers MOVED; a master that died
// answers nothing, so without this the client kept sending that master's
// slots to it long after its replica had taken over (measured: no write to
// those slots for 40 s; with it, writes are back as soon as the cluster has
// failed over). Reloads are at most one per reloadEvery.
func FollowFailovers(c *redis.ClusterClient) {
	c.AddHook(&failoverHook{c: c})
}

const reloadEvery = 250 * time.Millisecond

type failoverHook struct {
	c    *redis.ClusterClient
	last atomic.Int64 // unix nanoseconds of the last reload
}

func (h *failoverHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *failoverHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		h.after(ctx, err)
		return err
	}
}

func (h *failoverHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		for _, c := range cmds {
			if err == nil {
				err = c.Err()
			}
		}
		h.after(ctx, err)
		return err
	}
}

// after asks for a reload of the slots when err says a node is gone. go-redis
// reloads in the background (one at a time, with a pause after each).
func (h *failoverHook) after(ctx context.Context, err error) {
	if !nodeGone(err) {
		return
	}
	now := time.Now().UnixNano()
	last := h.last.Load()
	if now-last < int64(reloadEvery) || !h.last.CompareAndSwap(last, now) {
		return
	}
	h.c.ReloadState(ctx)
}

func nodeGone(err error) bool {
	if err == nil || errors.Is(err, redis.Nil) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	msg := err.Error()
	return strings.HasPrefix(msg, "CLUSTERDOWN") || strings.Contains(msg, "connection refused") ||
		strings.Contains(msg, "connection reset") || strings.Contains(msg, "broken pipe")
}
