package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// needRedisTools skips the test (fails it in CI) without redis-server and redis-cli.
func needRedisTools(t testing.TB) {
	t.Helper()
	for _, tool := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(tool); err != nil {
			Unavailable(t, tool, err)
		}
	}
}

// RedisCluster is a Redis Cluster of the test's own on loopback ports: three
// masters and three replicas, stopped when the test ends.
type RedisCluster struct {
	t     testing.TB
	Nodes []*RedisServer
}

// StartRedisCluster starts six cluster-enabled redis-servers, makes them one
// cluster (redis-cli --cluster create … --cluster-replicas 1) and waits until
// every node says the cluster is ok.
func StartRedisCluster(t testing.TB) *RedisCluster {
	t.Helper()
	return StartRedisClusterTimeout(t, time.Second)
}

// StartRedisClusterTimeout is StartRedisCluster with the nodes'
// cluster-node-timeout (how long a master may be unreachable before its
// replica takes over; Redis's default is 15 s).
func StartRedisClusterTimeout(t testing.TB, nodeTimeout time.Duration) *RedisCluster {
	t.Helper()
	needRedisTools(t)
	dir := t.TempDir()
	c := &RedisCluster{t: t}
	for range 6 {
		r := &RedisServer{t: t, Port: FreePort(t)}
		// The bus port is given, not port+10000: a free port may be above 55535.
		r.args = []string{"--cluster-enabled", "yes", "--cluster-port", strconv.Itoa(FreePort(t)),
			"--cluster-config-file", filepath.Join(dir, "nodes-"+strconv.Itoa(r.Port)+".conf"),
			"--cluster-node-timeout", strconv.FormatInt(nodeTimeout.Milliseconds(), 10), "--repl-diskless-sync-delay", "0"}
		r.Start()
		t.Cleanup(r.Stop)
		c.Nodes = append(c.Nodes, r)
	}
	args := []string{"--cluster", "create"}
	args = append(args, c.Addrs()...)
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	waitUntil(t, 30*time.Second, "the cluster is ok", c.check)
	return c
}

// waitUntil polls check until it returns nil, failing the test after within.
func waitUntil(t testing.TB, within time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not so after %v: %s: %v", within, what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Addrs are the nodes' host:port.
func (c *RedisCluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.Addr()
	}
	return out
}

// Client is a cluster client on every node, closed when the test ends.
func (c *RedisCluster) Client() *redis.ClusterClient {
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	c.t.Cleanup(func() { rdb.Close() })
	return rdb
}

// check reports whether every running node says the cluster is ok, every
// replica has synced with its master (a replica that never did cannot take
// over) and a client can reach every master.
func (c *RedisCluster) check() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, n := range c.running() {
		rdb := redis.NewClient(&redis.Options{Addr: n.Addr()})
		info, err := rdb.ClusterInfo(ctx).Result()
		repl, rerr := rdb.Info(ctx, "replication").Result()
		rdb.Close()
		if err = errors.Join(err, rerr); err != nil {
			return err
		}
		if !strings.Contains(info, "cluster_state:ok") {
			return fmt.Errorf("%s: cluster_state not ok", n.Addr())
		}
		if strings.Contains(repl, "role:slave") && !strings.Contains(repl, "master_link_status:up") {
			return fmt.Errorf("%s: replica not synced yet", n.Addr())
		}
	}
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	defer rdb.Close()
	return rdb.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error { return m.Ping(ctx).Err() })
}

// RedisSentinel is a master, a replica and three sentinels of the test's own,
// stopped when the test ends.
type RedisSentinel struct {
	t         testing.TB
	Master    *RedisServer
	Replica   *RedisServer
	Sentinels []string // host:port
	Name      string   // the monitored master's name
}

// StartRedisSentinel starts the master, its replica and three sentinels
// (quorum 2, a master down after 1 s), and waits until every sentinel knows
// the replica and the other sentinels.
func StartRedisSentinel(t testing.TB) *RedisSentinel {
	t.Helper()
	needRedisTools(t)
	dir := t.TempDir()
	s := &RedisSentinel{t: t, Name: "pushworker-test"}
	s.Master = &RedisServer{t: t, Port: FreePort(t)}
	s.Master.Start()
	t.Cleanup(s.Master.Stop)
	s.Replica = &RedisServer{t: t, Port: FreePort(t), args: []string{"--replicaof", "127.0.0.1", strconv.Itoa(s.Master.Port)}}
	s.Replica.Start()
	t.Cleanup(s.Replica.Stop)
	for i := range 3 {
		port := FreePort(t)
		conf := filepath.Join(dir, "sentinel-"+strconv.Itoa(i)+".conf")
		text := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor %s 127.0.0.1 %d 2\n"+
			"sentinel down-after-milliseconds %s 1000\nsentinel failover-timeout %s 5000\n",
			port, dir, s.Name, s.Master.Port, s.Name, s.Name)
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("redis-server", conf, "--sentinel")
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting a sentinel: %v", err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		s.Sentinels = append(s.Sentinels, "127.0.0.1:"+strconv.Itoa(port))
	}
	waitUntil(t, 30*time.Second, "the sentinels know each other and the replica", s.check)
	return s
}

func (s *RedisSentinel) check() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, addr := range s.Sentinels {
		sc := redis.NewSentinelClient(&redis.Options{Addr: addr})
		replicas, err := sc.Replicas(ctx, s.Name).Result()
		if err == nil && len(replicas) == 0 {
			err = fmt.Errorf("%s knows no replica yet", addr)
		}
		if err == nil {
			var others []map[string]string
			if others, err = sc.Sentinels(ctx, s.Name).Result(); err == nil && len(others) < 2 {
				err = fmt.Errorf("%s knows %d other sentinels", addr, len(others))
			}
		}
		sc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// Client is a failover client through the sentinels, closed when the test ends.
func (s *RedisSentinel) Client() *redis.Client {
	rdb := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: s.Name, SentinelAddrs: s.Sentinels})
	s.t.Cleanup(func() { rdb.Close() })
	return rdb
}

// OwnerOf is the address of the node a running node says serves key's slot
// as master ("" if none answers).
func (c *RedisCluster) OwnerOf(key string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, n := range c.running() {
		rdb := redis.NewClient(&redis.Options{Addr: n.Addr()})
		slot, err1 := rdb.ClusterKeySlot(ctx, key).Result()
		slots, err2 := rdb.ClusterSlots(ctx).Result()
		rdb.Close()
		if errors.Join(err1, err2) != nil {
			continue
		}
		for _, s := range slots {
			if int64(s.Start) <= slot && slot <= int64(s.End) && len(s.Nodes) > 0 {
				return s.Nodes[0].Addr
			}
		}
	}
	return ""
}

// running are the nodes not stopped.
func (c *RedisCluster) running() []*RedisServer {
	var out []*RedisServer
	for _, n := range c.Nodes {
		if n.cmd != nil {
			out = append(out, n)
		}
	}
	return out
}

// Node is the node at addr.
func (c *RedisCluster) Node(addr string) *RedisServer {
	for _, n := range c.Nodes {
		if n.Addr() == addr {
			return n
		}
	}
	return nil
}

// MasterAddr is the master's address as the first sentinel that answers says.
func (s *RedisSentinel) MasterAddr() string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for _, addr := range s.Sentinels {
		sc := redis.NewSentinelClient(&redis.Options{Addr: addr})
		hp, err := sc.GetMasterAddrByName(ctx, s.Name).Result()
		sc.Close()
		if err == nil && len(hp) == 2 {
			return hp[0] + ":" + hp[1]
		}
	}
	return ""
}
