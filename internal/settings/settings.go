// Package settings is how every command is configured: typed values, each read
// from an environment variable (and most from a flag too), each with a named
// default constant. The table of settings is derived from the bindings of those
// typed fields, so --help, the table of docs/configuration.md and the code cannot
// disagree. It also holds the NATS connection settings every command shares. It
// imports no part of the worker, so that a command that only talks to NATS
// (enqueue) links none of it.
package settings

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/mpaas-push/pushworker/internal/dial"
)

// Setting is one configurable value, bound to a typed field.
type Setting struct {
	Group   string
	Env     string // environment variable
	Flag    string // command-line flag, "" for none (secrets come from the environment or a file only)
	Default string // the default as shown, formatted from the typed default; "" for unset
	Help    string
	Secret  bool // never printed, logged or shown as a flag; also read from <Env>_FILE

	set func(string) error // parses a value into the field; its error names no setting
}

// Table is an ordered list of settings.
type Table []Setting

// Parse sets every field to its default, then to the environment's value, then
// to a flag's (a flag wins). A secret may come from the file named by
// <Env>_FILE. Errors name the setting. Arguments that are not flags are refused.
func (t Table) Parse(name string, args []string, getenv func(string) string, usage string, out io.Writer) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() { t.usage(out, usage) }
	if err := t.ParseFlags(fs, args, getenv); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (settings are flags or environment variables: see --help)", fs.Arg(0))
	}
	return nil
}

// ParseFlags is Parse on a FlagSet of the caller's, which may hold flags of its
// own; the arguments left after the flags are fs.Args().
func (t Table) ParseFlags(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	values := make([]string, len(t))
	for i, st := range t {
		values[i] = st.Default
		if e := getenv(st.Env); e != "" {
			values[i] = e
		} else if st.Secret {
			v, err := readSecretFile(st.Env, getenv)
			if err != nil {
				return err
			}
			values[i] = v
		}
		if st.Flag != "" {
			fs.Func(st.Flag, st.Help, func(x string) error { values[i] = x; return nil })
		}
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	for i, st := range t {
		v := strings.TrimSpace(values[i])
		if err := st.set(v); err != nil {
			if st.Secret {
				return fmt.Errorf("%s: %v", st.Env, err)
			}
			return fmt.Errorf("%s=%q: %v", st.Env, v, err)
		}
	}
	return nil
}

func readSecretFile(env string, getenv func(string) string) (string, error) {
	path := getenv(env + "_FILE")
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s_FILE: %w", env, err)
	}
	return strings.TrimSpace(string(b)), nil
}

func (t Table) usage(out io.Writer, usage string) {
	fmt.Fprint(out, usage)
	group := ""
	for _, st := range t {
		if st.Group != group {
			group = st.Group
			fmt.Fprintf(out, "\n%s:\n", group)
		}
		name := st.Env
		if st.Flag != "" {
			name += ", --" + st.Flag
		}
		def := st.Default
		switch {
		case st.Secret:
			def = "(secret: environment or " + st.Env + "_FILE only)"
		case def == "":
			def = "unset"
		}
		fmt.Fprintf(out, "  %s\n      %s (default: %s)\n", name, st.Help, def)
	}
}

// A Binder makes settings in one group of a table.
type Binder struct {
	group string
	t     *Table
}

// NewBinder binds settings of group into t.
func NewBinder(group string, t *Table) Binder { return Binder{group, t} }

func (b Binder) add(env, flagName, def, help string, set func(string) error) {
	*b.t = append(*b.t, Setting{Group: b.group, Env: env, Flag: flagName, Default: def, Help: help, set: set})
}

// String binds a string.
func (b Binder) String(p *string, env, flagName, def, help string) {
	b.add(env, flagName, def, help, func(v string) error { *p = v; return nil })
}

// Secret binds a secret: from the environment or <env>_FILE, never a flag.
func (b Binder) Secret(p *string, env, help string) {
	*b.t = append(*b.t, Setting{Group: b.group, Env: env, Help: help, Secret: true,
		set: func(v string) error { *p = v; return nil }})
}

// Int binds a whole number of at least lowest.
func (b Binder) Int(p *int, env, flagName string, def, lowest int, help string) {
	b.add(env, flagName, strconv.Itoa(def), help, func(v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("want a whole number")
		}
		if n < lowest {
			return fmt.Errorf("want at least %d", lowest)
		}
		*p = n
		return nil
	})
}

// Float binds a number in [lo, hi).
func (b Binder) Float(p *float64, env, flagName string, def, lo, hi float64, help string) {
	b.add(env, flagName, strconv.FormatFloat(def, 'f', -1, 64), help, func(v string) error {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < lo || f >= hi {
			return fmt.Errorf("want a number from %g to below %g", lo, hi)
		}
		*p = f
		return nil
	})
}

// Bool binds true or false.
func (b Binder) Bool(p *bool, env, flagName string, def bool, help string) {
	b.add(env, flagName, strconv.FormatBool(def), help, func(v string) error {
		switch v {
		case "true", "false":
			*p = v == "true"
			return nil
		}
		return fmt.Errorf("want true or false")
	})
}

// Duration binds a Go duration of at least lowest.
func (b Binder) Duration(p *time.Duration, env, flagName string, def, lowest time.Duration, help string) {
	b.add(env, flagName, FormatDuration(def), help, func(v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return fmt.Errorf("want a duration such as 30s or 72h")
		}
		if d < lowest {
			return fmt.Errorf("want at least %s", FormatDuration(lowest))
		}
		*p = d
		return nil
	})
}

// Bytes binds a size: bytes, or with a KiB, MiB or GiB suffix.
func (b Binder) Bytes(p *int64, env, flagName string, def int64, help string) {
	b.add(env, flagName, FormatBytes(def), help, func(v string) error {
		n, err := ParseBytes(v)
		if err != nil {
			return err
		}
		*p = n
		return nil
	})
}

// Func binds a value with its own parser.
func (b Binder) Func(env, flagName, def, help string, set func(string) error) {
	b.add(env, flagName, def, help, set)
}

// FormatDuration writes a duration as a person would: 30s, 5m, 72h, 1h30m.
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

var byteUnits = []struct {
	suffix string
	mult   int64
}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}}

// FormatBytes writes a size with the largest unit that divides it.
func FormatBytes(n int64) string {
	for _, u := range byteUnits {
		if n >= u.mult && n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

// ParseBytes reads a size such as 1GiB, 64MiB or 1048576.
func ParseBytes(v string) (int64, error) {
	num, mult := v, int64(1)
	for _, u := range byteUnits {
		if rest, ok := strings.CutSuffix(v, u.suffix); ok {
			num, mult = rest, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("want a size such as 1GiB")
	}
	return n * mult, nil
}

// DefaultDevNATSPort is where dev mode's embedded NATS server listens, on 127.0.0.1.
const DefaultDevNATSPort = 14222

// DevNATSURL is where dev mode's embedded server listens by default, and where
// cmd/enqueue goes when NATS_URL is unset.
var DevNATSURL = "nats://127.0.0.1:" + strconv.Itoa(DefaultDevNATSPort)

// NATSSettings binds the NATS connection settings (shared by every command);
// urlHelp and urlDefault describe NATS_URL for that command.
func NATSSettings(t *Table, c *dial.NATSConfig, urlDefault, urlHelp string) {
	b := Binder{"Connections", t}
	b.String(&c.URL, "NATS_URL", "nats-url", urlDefault, urlHelp)
	b.String(&c.Creds, "NATS_CREDS", "nats-creds", "", "NATS credentials file (JWT and NKey seed)")
	b.String(&c.NKeySeedFile, "NATS_NKEY_SEED_FILE", "nats-nkey-seed-file", "", "file holding a NATS NKey seed")
	b.String(&c.User, "NATS_USER", "nats-user", "", "NATS user (with NATS_PASSWORD)")
	b.Secret(&c.Password, "NATS_PASSWORD", "NATS password; or NATS_PASSWORD_FILE")
	b.Secret(&c.Token, "NATS_TOKEN", "NATS token; or NATS_TOKEN_FILE")
	b.String(&c.CA, "NATS_CA", "nats-ca", "", "CA file to verify the NATS server's certificate")
	b.String(&c.Cert, "NATS_CERT", "nats-cert", "", "client certificate file for NATS (with NATS_KEY)")
	b.String(&c.Key, "NATS_KEY", "nats-key", "", "client key file for NATS")
}
