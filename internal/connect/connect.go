// Package connect opens the worker's and the loader's connections to NATS and
// Redis from their settings, with errors that say what to fix and never a secret.
package connect

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"

	"github.com/mpaas-push/pushworker/internal/config"
)

// NATSSettings are the NATS connection settings other than NATS_URL, shared by
// the worker and the loader.
var NATSSettings = []config.Setting{
	{Group: "Connections", Env: "NATS_CREDS", Flag: "nats-creds", Help: "NATS credentials file (JWT and NKey seed)"},
	{Group: "Connections", Env: "NATS_NKEY_SEED_FILE", Flag: "nats-nkey-seed-file", Help: "file holding a NATS NKey seed"},
	{Group: "Connections", Env: "NATS_USER", Flag: "nats-user", Help: "NATS user (with NATS_PASSWORD)"},
	{Group: "Connections", Env: "NATS_PASSWORD", Secret: true, Help: "NATS password; or NATS_PASSWORD_FILE"},
	{Group: "Connections", Env: "NATS_TOKEN", Secret: true, Help: "NATS token; or NATS_TOKEN_FILE"},
	{Group: "Connections", Env: "NATS_CA", Flag: "nats-ca", Help: "CA file to verify the NATS server's certificate"},
	{Group: "Connections", Env: "NATS_CERT", Flag: "nats-cert", Help: "client certificate file for NATS (with NATS_KEY)"},
	{Group: "Connections", Env: "NATS_KEY", Flag: "nats-key", Help: "client key file for NATS"},
}

// RedisSettings are the Redis connection settings.
var RedisSettings = []config.Setting{
	{Group: "Connections", Env: "REDIS_URL", Flag: "redis-url", Help: "redis:// or rediss:// URL (user and password may be in it); unset: in-memory dedupe and rate limit, dev mode only"},
	{Group: "Connections", Env: "REDIS_PASSWORD", Secret: true, Help: "Redis password, if not in REDIS_URL; or REDIS_PASSWORD_FILE"},
	{Group: "Connections", Env: "REDIS_CA", Flag: "redis-ca", Help: "CA file to verify Redis's certificate (rediss://)"},
	{Group: "Connections", Env: "REDIS_SENTINEL_MASTER", Flag: "redis-sentinel-master", Help: "Sentinel master name: REDIS_URL's host and REDIS_ADDRS are then Sentinels"},
	{Group: "Connections", Env: "REDIS_ADDRS", Flag: "redis-addrs", Help: "more Redis addresses, comma-separated: Cluster nodes (or Sentinels with REDIS_SENTINEL_MASTER)"},
}

// NATSOptions are the connection options from the settings: authentication, TLS,
// and reconnecting for ever (an outage pauses the worker, it does not stop it).
func NATSOptions(cfg *config.Set, getenv func(string) string) ([]nats.Option, error) {
	opts := []nats.Option{
		nats.Name("pushworker"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.Timeout(5 * time.Second),
	}
	if f := cfg.String("NATS_CREDS"); f != "" {
		opts = append(opts, nats.UserCredentials(f))
	}
	if f := cfg.String("NATS_NKEY_SEED_FILE"); f != "" {
		o, err := nats.NkeyOptionFromSeed(f)
		if err != nil {
			return nil, fmt.Errorf("NATS_NKEY_SEED_FILE: %w", err)
		}
		opts = append(opts, o)
	}
	if user := cfg.String("NATS_USER"); user != "" {
		pass, err := cfg.Secret("NATS_PASSWORD", getenv)
		if err != nil {
			return nil, err
		}
		opts = append(opts, nats.UserInfo(user, pass))
	}
	token, err := cfg.Secret("NATS_TOKEN", getenv)
	if err != nil {
		return nil, err
	}
	if token != "" {
		opts = append(opts, nats.Token(token))
	}
	if ca := cfg.String("NATS_CA"); ca != "" {
		opts = append(opts, nats.RootCAs(ca))
	}
	cert, key := cfg.String("NATS_CERT"), cfg.String("NATS_KEY")
	if (cert == "") != (key == "") {
		return nil, errors.New("set both NATS_CERT and NATS_KEY, or neither")
	}
	if cert != "" {
		opts = append(opts, nats.ClientCert(cert, key))
	}
	return opts, nil
}

// NATS connects once, failing fast with what to fix; later outages are
// reconnected for ever.
func NATS(urls string, opts []nats.Option) (*nats.Conn, error) {
	nc, err := nats.Connect(urls, opts...)
	if err != nil {
		switch {
		case strings.Contains(err.Error(), "tls error") || strings.Contains(err.Error(), "x509") || strings.Contains(err.Error(), "certificate"):
			return nil, fmt.Errorf("NATS at %s: TLS handshake failed: check NATS_CA, NATS_CERT and NATS_KEY: %w", RedactURLs(urls), err)
		case errors.Is(err, nats.ErrAuthorization), strings.Contains(strings.ToLower(err.Error()), "authorization"):
			return nil, fmt.Errorf("NATS at %s refused the login: check NATS_USER/NATS_PASSWORD, NATS_TOKEN, NATS_CREDS or NATS_NKEY_SEED_FILE: %w", RedactURLs(urls), err)
		default:
			return nil, fmt.Errorf("cannot connect to NATS at %s (check NATS_URL, and that the server runs with JetStream): %w", RedactURLs(urls), err)
		}
	}
	return nc, nil
}

// Redis builds the universal client: plain, Sentinel (REDIS_SENTINEL_MASTER)
// or Cluster (several addresses), and checks that Redis answers.
func Redis(ctx context.Context, cfg *config.Set, getenv func(string) string) (redis.UniversalClient, error) {
	raw := cfg.String("REDIS_URL")
	u, err := redis.ParseURL(raw)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL %s: want redis://[user:password@]host:port[/db] or rediss://…: %w", RedactURL(raw), err)
	}
	opts := &redis.UniversalOptions{
		Addrs:      []string{u.Addr},
		Username:   u.Username,
		Password:   u.Password,
		DB:         u.DB,
		TLSConfig:  u.TLSConfig,
		MasterName: cfg.String("REDIS_SENTINEL_MASTER"),

		DialTimeout:  2 * time.Second,
		ReadTimeout:  2 * time.Second,
		WriteTimeout: 2 * time.Second,
		PoolSize:     64,
	}
	if extra := cfg.String("REDIS_ADDRS"); extra != "" {
		for _, a := range strings.Split(extra, ",") {
			if a = strings.TrimSpace(a); a != "" {
				opts.Addrs = append(opts.Addrs, a)
			}
		}
	}
	if opts.Password == "" {
		if opts.Password, err = cfg.Secret("REDIS_PASSWORD", getenv); err != nil {
			return nil, err
		}
	}
	if ca := cfg.String("REDIS_CA"); ca != "" {
		if opts.TLSConfig == nil {
			return nil, errors.New("REDIS_CA is set but REDIS_URL is not rediss://")
		}
		pool, err := LoadCA(ca)
		if err != nil {
			return nil, fmt.Errorf("REDIS_CA: %w", err)
		}
		opts.TLSConfig.RootCAs = pool
	}
	rdb := redis.NewUniversalClient(opts)
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("cannot reach Redis at %s (check REDIS_URL, its password and TLS settings): %w", RedactURL(raw), err)
	}
	return rdb, nil
}

// LoadCA reads a PEM CA file.
func LoadCA(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

// RedactURL hides a URL's password, for messages.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		if err != nil {
			return "(unparseable URL)"
		}
		return raw
	}
	return u.Redacted()
}

// RedactURLs hides the passwords of a comma-separated list of URLs.
func RedactURLs(raw string) string {
	parts := strings.Split(raw, ",")
	for i, p := range parts {
		parts[i] = RedactURL(strings.TrimSpace(p))
	}
	return strings.Join(parts, ",")
}
