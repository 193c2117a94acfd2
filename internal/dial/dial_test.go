package dial_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
	"github.com/redis/go-redis/v9"

	"github.com/mpaas-push/pushworker/internal/config"
	"github.com/mpaas-push/pushworker/internal/dial"
	"github.com/mpaas-push/pushworker/internal/testenv"
)

// settings reads the worker's connection settings from env, through the
// worker's own table.
func settings(t *testing.T, env map[string]string) *config.Worker {
	t.Helper()
	w := &config.Worker{}
	if err := w.Settings().Parse("test", nil, func(k string) string { return env[k] }, "", io.Discard); err != nil {
		t.Fatal(err)
	}
	return w
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// dialWith connects with the settings in env; it returns the error and how long the
// attempt took.
func dialWith(t *testing.T, url string, env map[string]string) (time.Duration, error) {
	t.Helper()
	env["NATS_URL"] = url
	opts, err := dial.NATSOptions(settings(t, env).NATS)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	nc, err := dial.NATS(url, opts)
	if err == nil {
		nc.Close()
	}
	return time.Since(start), err
}

// authCase is one way to log in, with settings that work and settings that must be refused.
type authCase struct {
	name        string
	opts        *server.Options
	scheme      string
	good, bad   map[string]string
	secretWords []string // must not appear in a refusal's error
}

func TestNATSAuthentication(t *testing.T) {
	t.Parallel()
	userSeedFile, wrongSeedFile, nkeyUser := nkeySeeds(t)
	creds, wrongCreds, operator, accountPub, accountJWT := credsFiles(t)
	resolver := &server.MemAccResolver{}
	if err := resolver.Store(accountPub, accountJWT); err != nil {
		t.Fatal(err)
	}
	certs := testenv.NewCerts(t)
	tlsConfig, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: certs.ServerCert, KeyFile: certs.ServerKey, CaFile: certs.CA, Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	passFile := writeFile(t, "nats-password", "nats-pass-3f9a\n")
	cases := []authCase{
		{name: "user and password", opts: &server.Options{Username: "pusher", Password: "nats-pass-3f9a"},
			good:        map[string]string{"NATS_USER": "pusher", "NATS_PASSWORD": "nats-pass-3f9a"},
			bad:         map[string]string{"NATS_USER": "pusher", "NATS_PASSWORD": "wrong-pass-771"},
			secretWords: []string{"wrong-pass-771", "nats-pass-3f9a"}},
		{name: "password from a file", opts: &server.Options{Username: "pusher", Password: "nats-pass-3f9a"},
			good: map[string]string{"NATS_USER": "pusher", "NATS_PASSWORD_FILE": passFile},
			bad:  map[string]string{"NATS_USER": "someone", "NATS_PASSWORD_FILE": passFile}, secretWords: []string{"nats-pass-3f9a"}},
		{name: "token", opts: &server.Options{Authorization: "tok-8812-secret"},
			good: map[string]string{"NATS_TOKEN": "tok-8812-secret"},
			bad:  map[string]string{"NATS_TOKEN": "tok-wrong-000"}, secretWords: []string{"tok-wrong-000", "tok-8812-secret"}},
		{name: "NKey", opts: &server.Options{Nkeys: []*server.NkeyUser{{Nkey: nkeyUser}}},
			good: map[string]string{"NATS_NKEY_SEED_FILE": userSeedFile},
			bad:  map[string]string{"NATS_NKEY_SEED_FILE": wrongSeedFile}},
		{name: "credentials file", opts: &server.Options{TrustedOperators: []*jwt.OperatorClaims{operator}, AccountResolver: resolver},
			good: map[string]string{"NATS_CREDS": creds},
			bad:  map[string]string{"NATS_CREDS": wrongCreds}},
		{name: "TLS with a client certificate", opts: &server.Options{TLSConfig: tlsConfig, TLS: true, TLSVerify: true}, scheme: "tls",
			good: map[string]string{"NATS_CA": certs.CA, "NATS_CERT": certs.ClientCert, "NATS_KEY": certs.ClientKey},
			bad:  map[string]string{"NATS_CA": certs.CA}}, // no client certificate
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ns := testenv.NATSPlain(t, c.opts)
			url := ns.ClientURL()
			if c.scheme != "" {
				url = strings.Replace(url, "nats://", c.scheme+"://", 1)
			}
			if _, err := dialWith(t, url, c.good); err != nil {
				t.Fatalf("login refused: %v", err)
			}
			took, err := dialWith(t, url, c.bad)
			if err == nil {
				t.Fatal("a wrong login was accepted")
			}
			// One attempt, not a retry storm, and a clear error without the secret.
			if took > 5*time.Second {
				t.Fatalf("a refused login took %v", took)
			}
			if want := map[string]string{"": "refused the login", "tls": "TLS handshake failed"}[c.scheme]; !strings.Contains(err.Error(), want) {
				t.Fatalf("the error must say the login was refused: %v", err)
			}
			for _, w := range c.secretWords {
				if strings.Contains(err.Error(), w) {
					t.Fatalf("the error holds a secret: %v", err)
				}
			}
			t.Logf("refused in %v: %v", took.Round(time.Millisecond), err)
		})
	}
}

func nkeySeeds(t *testing.T) (seedFile, wrongSeedFile, pub string) {
	t.Helper()
	kp, _ := nkeys.CreateUser()
	seed, _ := kp.Seed()
	pub, _ = kp.PublicKey()
	other, _ := nkeys.CreateUser()
	otherSeed, _ := other.Seed()
	return writeFile(t, "user.nk", string(seed)), writeFile(t, "other.nk", string(otherSeed)), pub
}

// credsFiles makes an operator, an account it signs, and a user the account signs,
// and a user signed by a stranger account.
func credsFiles(t *testing.T) (creds, wrongCreds string, operator *jwt.OperatorClaims, accountPub, accountJWT string) {
	t.Helper()
	okp, _ := nkeys.CreateOperator()
	opub, _ := okp.PublicKey()
	operator = jwt.NewOperatorClaims(opub)
	if _, err := operator.Encode(okp); err != nil {
		t.Fatal(err)
	}
	akp, _ := nkeys.CreateAccount()
	accountPub, _ = akp.PublicKey()
	var err error
	if accountJWT, err = jwt.NewAccountClaims(accountPub).Encode(okp); err != nil {
		t.Fatal(err)
	}
	user := func(signer nkeys.KeyPair) string {
		ukp, _ := nkeys.CreateUser()
		upub, _ := ukp.PublicKey()
		useed, _ := ukp.Seed()
		ujwt, err := jwt.NewUserClaims(upub).Encode(signer)
		if err != nil {
			t.Fatal(err)
		}
		b, err := jwt.FormatUserConfig(ujwt, useed)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	stranger, _ := nkeys.CreateAccount()
	return writeFile(t, "user.creds", user(akp)), writeFile(t, "stranger.creds", user(stranger)), operator, accountPub, accountJWT
}

func TestRedisACLUser(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRedis(t)
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer admin.Close()
	ctx := context.Background()
	if err := admin.Do(ctx, "ACL", "SETUSER", "pusher", "on", ">redis-pass-62c1", "~pushworker:*", "+@all").Err(); err != nil {
		t.Fatal(err)
	}
	if err := admin.Do(ctx, "ACL", "SETUSER", "default", "off").Err(); err != nil {
		t.Fatal(err)
	}
	try := func(env map[string]string) error {
		rdb, err := dial.Redis(ctx, settings(t, env).Redis)
		if err == nil {
			defer rdb.Close()
			// The ACL allows the worker's keys only: the user really is the one logged in.
			if err := rdb.Set(ctx, "pushworker:probe", "1", time.Minute).Err(); err != nil {
				return err
			}
			if err := rdb.Set(ctx, "elsewhere", "1", time.Minute).Err(); err == nil {
				t.Fatal("the ACL user wrote outside its keys: not logged in as that user")
			}
		}
		return err
	}
	if err := try(map[string]string{"REDIS_URL": "redis://pusher:redis-pass-62c1@" + srv.Addr()}); err != nil {
		t.Fatalf("ACL user in the URL: %v", err)
	}
	passFile := writeFile(t, "redis-password", "redis-pass-62c1")
	if err := try(map[string]string{"REDIS_URL": "redis://pusher@" + srv.Addr(), "REDIS_PASSWORD_FILE": passFile}); err != nil {
		t.Fatalf("ACL user with REDIS_PASSWORD_FILE: %v", err)
	}
	err := try(map[string]string{"REDIS_URL": "redis://pusher:wrong-pass-19@" + srv.Addr()})
	if err == nil || !strings.Contains(err.Error(), "check REDIS_URL") || strings.Contains(err.Error(), "wrong-pass-19") {
		t.Fatalf("a wrong password must be a clear error without the password: %v", err)
	}
}

func TestRedisTLS(t *testing.T) {
	t.Parallel()
	certs := testenv.NewCerts(t)
	srv := testenv.StartRedisTLS(t, certs)
	ctx := context.Background()
	rdb, err := dial.Redis(ctx, settings(t, map[string]string{"REDIS_URL": "rediss://" + srv.Addr(), "REDIS_CA": certs.CA}).Redis)
	if err != nil {
		t.Fatalf("rediss:// with REDIS_CA: %v", err)
	}
	rdb.Close()
	if _, err := dial.Redis(ctx, settings(t, map[string]string{"REDIS_URL": "rediss://" + srv.Addr()}).Redis); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("a server whose CA is not trusted must be refused: %v", err)
	}
	if _, err := dial.Redis(ctx, settings(t, map[string]string{"REDIS_URL": "redis://" + srv.Addr(), "REDIS_CA": certs.CA}).Redis); err == nil || !strings.Contains(err.Error(), "REDIS_CA is set but REDIS_URL is not rediss://") {
		t.Fatalf("REDIS_CA without rediss:// must say so: %v", err)
	}
}

// After a Redis Cluster master dies, the worker's client writes to its slots
// again within 2 s of the cluster's own failover (its replica taking over).
func TestClusterClientFollowsFailover(t *testing.T) {
	cluster := testenv.StartRedisCluster(t)
	addrs := cluster.Addrs()
	ctx := context.Background()
	rdb, err := dial.Redis(ctx, dial.RedisConfig{URL: "redis://" + addrs[0], Addrs: strings.Join(addrs[1:], ",")})
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	const key = "pushworker-failover"
	if err := rdb.Set(ctx, key, "before", 0).Err(); err != nil {
		t.Fatal(err)
	}
	dead := cluster.OwnerOf(key)
	victim := cluster.Node(dead)
	if victim == nil {
		t.Fatalf("no node serves %s's slot (%q)", key, dead)
	}
	victim.Stop()
	killed := time.Now()
	var failedOver, back time.Duration
	for time.Since(killed) < 30*time.Second && (failedOver == 0 || back == 0) {
		if failedOver == 0 {
			if owner := cluster.OwnerOf(key); owner != "" && owner != dead {
				failedOver = time.Since(killed)
			}
		}
		if back == 0 {
			wctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			if rdb.Set(wctx, key, "after", 0).Err() == nil {
				back = time.Since(killed)
			}
			cancel()
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("master %s killed: the cluster failed over after %v, the client wrote again after %v", dead, failedOver, back)
	if failedOver == 0 || back == 0 {
		t.Fatalf("within 30 s: failover %v, client back %v", failedOver, back)
	}
	if back > failedOver+2*time.Second {
		t.Fatalf("the client wrote again %v after the failover, want within 2 s", back-failedOver)
	}
}

// Behind Sentinel, the worker's client follows the promoted replica: it writes
// again within 2 s of the sentinels' failover.
func TestSentinelClientFollowsFailover(t *testing.T) {
	s := testenv.StartRedisSentinel(t)
	ctx := context.Background()
	rdb, err := dial.Redis(ctx, dial.RedisConfig{URL: "redis://" + s.Sentinels[0], SentinelMaster: s.Name,
		Addrs: strings.Join(s.Sentinels[1:], ",")})
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	if err := rdb.Set(ctx, "pushworker-failover", "before", 0).Err(); err != nil {
		t.Fatal(err)
	}
	s.Master.Stop()
	killed := time.Now()
	var failedOver, back time.Duration
	for time.Since(killed) < 30*time.Second && (failedOver == 0 || back == 0) {
		if failedOver == 0 && s.MasterAddr() == s.Replica.Addr() {
			failedOver = time.Since(killed)
		}
		if back == 0 {
			wctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			if rdb.Set(wctx, "pushworker-failover", "after", 0).Err() == nil {
				back = time.Since(killed)
			}
			cancel()
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("master killed: the sentinels promoted the replica after %v, the client wrote again after %v", failedOver, back)
	if failedOver == 0 || back == 0 {
		t.Fatalf("within 30 s: failover %v, client back %v", failedOver, back)
	}
	if back > failedOver+2*time.Second {
		t.Fatalf("the client wrote again %v after the failover, want within 2 s", back-failedOver)
	}
}
