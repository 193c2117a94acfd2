// Package dial opens the worker's and the loader's connections to NATS and
// Redis from their settings, with errors that say what to fix and never a secret.
//
// It imports nothing of this project.
package dial

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
)

// NATSConfig is how to reach and log in to NATS.
type NATSConfig struct {
	URL                   string // one or more URLs, comma-separated
	Creds, NKeySeedFile   string // files
	User, Password, Token string
	CA, Cert, Key         string // files
}

// RedisConfig is how to reach Redis: one URL, or Sentinels, or Cluster nodes.
type RedisConfig struct {
	URL            string // redis:// or rediss://
	Password       string // when not in URL
	CA             string // file, with rediss://
	SentinelMaster string // URL's host and Addrs are then Sentinels
	Addrs          string // more addresses, comma-separated
}

// NATSOptions are the connection options from the settings: authentication, TLS,
// and reconnecting for ever (an outage pauses the worker, it does not stop it).
func NATSOptions(c NATSConfig) ([]nats.Option, error) {
	opts := []nats.Option{
		nats.Name("pushworker"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.Timeout(5 * time.Second),
	}
	if c.Creds != "" {
		opts = append(opts, nats.UserCredentials(c.Creds))
	}
	if c.NKeySeedFile != "" {
		o, err := nats.NkeyOptionFromSeed(c.NKeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("NATS_NKEY_SEED_FILE: %w", err)
		}
		opts = append(opts, o)
	}
	if c.User != "" {
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	}
	if c.Token != "" {
		opts = append(opts, nats.Token(c.Token))
	}
	if c.CA != "" {
		opts = append(opts, nats.RootCAs(c.CA))
	}
	cert, key := c.Cert, c.Key
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
		case tlsFailure(err):
			return nil, fmt.Errorf("NATS at %s: TLS handshake failed: check NATS_CA, NATS_CERT and NATS_KEY: %w", RedactURLs(urls), err)
		case errors.Is(err, nats.ErrAuthorization), errors.Is(err, nats.ErrAuthExpired), errors.Is(err, nats.ErrAuthRevoked):
			return nil, fmt.Errorf("NATS at %s refused the login: check NATS_USER/NATS_PASSWORD, NATS_TOKEN, NATS_CREDS or NATS_NKEY_SEED_FILE: %w", RedactURLs(urls), err)
		default:
			return nil, fmt.Errorf("cannot connect to NATS at %s (check NATS_URL, and that the server runs with JetStream): %w", RedactURLs(urls), err)
		}
	}
	return nc, nil
}

// tlsFailure reports a failed TLS handshake: a certificate that does not
// verify, a server that asked for one the client lacks, or any TLS alert.
func tlsFailure(err error) bool {
	var (
		verify  *tls.CertificateVerificationError
		unknown x509.UnknownAuthorityError
		record  tls.RecordHeaderError
		op      *net.OpError
	)
	// crypto/tls reports an alert from the server (such as "certificate
	// required") as a *net.OpError whose Op is "remote error".
	return errors.As(err, &verify) || errors.As(err, &unknown) || errors.As(err, &record) ||
		(errors.As(err, &op) && op.Op == "remote error") ||
		errors.Is(err, nats.ErrTLS) || errors.Is(err, nats.ErrSecureConnRequired) || errors.Is(err, nats.ErrSecureConnWanted)
}

// Redis builds the universal client: plain, Sentinel (REDIS_SENTINEL_MASTER)
// or Cluster (several addresses), and checks that Redis answers.
func Redis(ctx context.Context, c RedisConfig) (redis.UniversalClient, error) {
	raw := c.URL
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
		MasterName: c.SentinelMaster,

		DialTimeout:  2 * time.Second,
		ReadTimeout:  2 * time.Second,
		WriteTimeout: 2 * time.Second,
		PoolSize:     64,
		// One dial per attempt: the worker retries what failed itself (briefly,
		// retry.StoreProbe), and a cluster client learns sooner that a node is
		// gone (go-redis's default, five dials 100 ms apart, held every command
		// to a dead master half a second).
		DialerRetries: 1,
	}
	if extra := c.Addrs; extra != "" {
		for _, a := range strings.Split(extra, ",") {
			if a = strings.TrimSpace(a); a != "" {
				opts.Addrs = append(opts.Addrs, a)
			}
		}
	}
	if opts.Password == "" {
		opts.Password = c.Password
	}
	if ca := c.CA; ca != "" {
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
	if cluster, ok := rdb.(*redis.ClusterClient); ok {
		FollowFailovers(cluster)
	}
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
