// Package config reads settings from the environment and from flags, from one
// table, so that --help, the README and the code cannot disagree.
package config

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// Setting is one configurable value.
type Setting struct {
	Env     string // environment variable
	Flag    string // command-line flag, "" for none (secrets come from the environment or a file only)
	Default string
	Help    string
	Secret  bool // never printed, logged or shown as a flag default
	Group   string
}

// Set holds settings and their values.
type Set struct {
	settings []Setting
	values   map[string]*string
	fromFlag map[string]bool
}

// NewSet makes a set of settings.
func NewSet(settings []Setting) *Set {
	return &Set{settings: settings, values: map[string]*string{}, fromFlag: map[string]bool{}}
}

// Settings lists the table.
func (s *Set) Settings() []Setting { return s.settings }

// Parse reads the environment, then the flags (a flag wins over the environment).
func (s *Set) Parse(name string, args []string, getenv func(string) string, usage string, out io.Writer) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	for _, st := range s.settings {
		v := st.Default
		if e := getenv(st.Env); e != "" {
			v = e
		}
		val := v
		s.values[st.Env] = &val
		if st.Flag != "" {
			fs.Func(st.Flag, st.Help, func(x string) error {
				*s.values[st.Env] = x
				return nil
			})
		}
	}
	fs.Usage = func() { s.usage(out, usage) }
	return fs.Parse(args)
}

func (s *Set) usage(out io.Writer, usage string) {
	fmt.Fprint(out, usage)
	group := ""
	for _, st := range s.settings {
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
			def = "(secret: environment or file only)"
		case def == "":
			def = "unset"
		}
		fmt.Fprintf(out, "  %s\n      %s (default: %s)\n", name, st.Help, def)
	}
}

// String is a setting's value.
func (s *Set) String(env string) string {
	p, ok := s.values[env]
	if !ok {
		panic("config: unknown setting " + env)
	}
	return strings.TrimSpace(*p)
}

// Int reads a whole number; err names the setting.
func (s *Set) Int(env string) (int, error) {
	v := s.String(env)
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("%s=%q: want a whole number", env, v)
	}
	return n, nil
}

// Duration reads a Go duration ("30s", "72h").
func (s *Set) Duration(env string) (time.Duration, error) {
	v := s.String(env)
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%s=%q: want a duration such as 30s or 72h", env, v)
	}
	return d, nil
}

// Bytes reads a size: a number of bytes, or with a KiB, MiB or GiB suffix.
func (s *Set) Bytes(env string) (int64, error) {
	v := s.String(env)
	mult := int64(1)
	for suffix, m := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if strings.HasSuffix(v, suffix) {
			v, mult = strings.TrimSuffix(v, suffix), m
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s=%q: want a size such as 1GiB", env, s.String(env))
	}
	return n * mult, nil
}

// Secret reads a secret from its variable, or from the file named by the variable
// with a _FILE suffix (for orchestrators that mount secrets).
func (s *Set) Secret(env string, getenv func(string) string) (string, error) {
	if v := s.String(env); v != "" {
		return v, nil
	}
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
