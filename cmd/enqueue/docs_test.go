package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// docFiles are the README and every file under docs/.
func docFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{"../../README.md"}, files...)
}

// invocation finds an enqueue command: go run ./cmd/enqueue, enqueue or
// bin/enqueue, followed by its arguments.
var invocation = regexp.MustCompile(`(?:go run \./cmd/enqueue|(?:^|[\s(])(?:bin/)?enqueue)(?:\s+(.*))?$`)

// docCommand is one enqueue command written in a doc.
type docCommand struct {
	where string // file:line
	args  []string
}

// docCommands returns the enqueue commands of a markdown file: the lines of its
// sh code blocks (a trailing backslash joins the next line; a " #" comment is
// cut off) and its inline code spans.
func docCommands(path, text string) []docCommand {
	var cmds []docCommand
	add := func(line int, s string) {
		for _, part := range strings.Split(s, "&&") {
			if m := invocation.FindStringSubmatchIndex(part); m != nil {
				args := ""
				if m[2] >= 0 {
					args = part[m[2]:m[3]]
				}
				cmds = append(cmds, docCommand{where: path + ":" + strconv.Itoa(line), args: strings.Fields(args)})
			}
		}
	}
	lines := strings.Split(text, "\n")
	inCode, shell := false, false
	var para []string
	paraLine := 0
	flush := func() {
		for _, m := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(strings.Join(para, " "), -1) {
			if strings.HasPrefix(m[1], "enqueue ") || m[1] == "enqueue" || strings.HasPrefix(m[1], "go run ./cmd/enqueue") {
				add(paraLine, m[1])
			}
		}
		para = nil
	}
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "```") {
			flush()
			if !inCode {
				lang := strings.TrimPrefix(trimmed, "```")
				shell = lang == "sh" || lang == "bash"
			}
			inCode = !inCode
			continue
		}
		if inCode {
			if !shell {
				continue
			}
			start := i
			for strings.HasSuffix(strings.TrimSpace(line), "\\") && i+1 < len(lines) {
				line = strings.TrimSuffix(strings.TrimSpace(line), "\\") + " " + lines[i+1]
				i++
			}
			if c := strings.Index(line, " #"); c >= 0 {
				line = line[:c]
			}
			if strings.HasPrefix(strings.TrimSpace(line), "#") {
				continue
			}
			add(start+1, strings.TrimSpace(line))
			continue
		}
		if trimmed == "" {
			flush()
			continue
		}
		if para == nil {
			paraLine = i + 1
		}
		para = append(para, trimmed)
	}
	flush()
	return cmds
}

// subcommandOf names the subcommand args run, as run does, and the arguments
// after it; "" when the words name none.
func subcommandOf(args []string) (string, []string, bool) {
	if len(args) == 0 {
		return "publish", nil, true
	}
	switch first := args[0]; first {
	case "publish", "broadcast", "status", "repair", "result", "console", "load", "revoke":
		return first, args[1:], true
	case "dlq", "campaign", "scheduled":
		if len(args) == 1 {
			return "", nil, true // the group named in prose
		}
		// "campaign status NAME", or a list of verbs such as "campaign list|status|…".
		if subcommands[first+" "+args[1]] != nil {
			return first + " " + args[1], args[2:], true
		}
		return "", nil, false
	default:
		if regexp.MustCompile(`^[a-z]+$`).MatchString(first) {
			return "", nil, false // a word that is no subcommand
		}
		return "publish", args, true // flags or files
	}
}

// flagsOf lists the flags a subcommand takes, read from its own --help.
func flagsOf(t *testing.T, name string) map[string]bool {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), append(strings.Fields(name), "--help"), func(string) string { return "" },
		strings.NewReader(""), &stdout, &stderr)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("enqueue %s --help: %v\n%s", name, err, stderr.String())
	}
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+-([a-z][a-z0-9-]*)`).FindAllStringSubmatch(stderr.String(), -1) {
		flags[m[1]] = true
	}
	if len(flags) == 0 {
		t.Fatalf("enqueue %s --help lists no flag:\n%s", name, stderr.String())
	}
	return flags
}

var flagWord = regexp.MustCompile(`^[\[(|]*--?([a-z][a-z0-9-]*)`)

// Every enqueue command of the README and docs/ names a subcommand enqueue has,
// with flags that subcommand takes; every subcommand is written somewhere, and
// enqueue --help names each one. The README's command list and the help text
// are written by hand: this test holds both to the code.
func TestDocsCommandsAreTheCode(t *testing.T) {
	flags := map[string]map[string]bool{}
	for name := range subcommands {
		flags[name] = flagsOf(t, name)
	}
	seen := map[string]bool{}
	count := 0
	for _, path := range docFiles(t) {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range docCommands(filepath.Base(path), string(raw)) {
			count++
			name, rest, ok := subcommandOf(c.args)
			if !ok {
				t.Errorf("%s: enqueue %s: no such subcommand", c.where, strings.Join(c.args, " "))
				continue
			}
			if name == "" {
				continue
			}
			seen[name] = true
			for _, w := range rest {
				m := flagWord.FindStringSubmatch(w)
				if m == nil {
					continue
				}
				if !flags[name][m[1]] && m[1] != "help" {
					t.Errorf("%s: enqueue %s: %q is not a flag of enqueue %s", c.where, strings.Join(c.args, " "), m[1], name)
				}
			}
		}
	}
	t.Logf("%d enqueue commands checked", count)
	if count < 30 {
		t.Fatalf("found only %d enqueue commands in the docs: the parser is broken", count)
	}
	var missing []string
	for name := range subcommands {
		if !seen[name] {
			missing = append(missing, name)
		}
		want := "enqueue " + name
		if name == "publish" {
			want = "enqueue [publish]"
		}
		if !strings.Contains(usage, want) {
			t.Errorf("enqueue --help does not name %q", want)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("no command of the README or docs/ runs: enqueue %s", strings.Join(missing, ", enqueue "))
	}
}

// Every file of examples/ that the README or docs/ name exists.
func TestDocsExamplesExist(t *testing.T) {
	re := regexp.MustCompile(`examples/[A-Za-z0-9_.-]*[A-Za-z0-9_]`)
	n := 0
	for _, path := range docFiles(t) {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range re.FindAllString(string(raw), -1) {
			n++
			if _, err := os.Stat(filepath.Join("../..", f)); err != nil {
				t.Errorf("%s names %s, which does not exist", filepath.Base(path), f)
			}
		}
	}
	if n == 0 {
		t.Fatal("the docs name no file of examples/")
	}
}
