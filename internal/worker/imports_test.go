package worker_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/mpaas-push/pushworker/"

// The package doc's rules: no part of the worker imports internal/worker (commands and
// the harness do), and internal/worker imports nothing of the operators' side nor
// anything made for tests. Test files may import what they like.
func TestImports(t *testing.T) {
	forbidden := []string{"internal/ops", "internal/loader", "internal/cmdmain", "internal/teststack", "internal/testenv", "internal/chaos", "cmd/"}
	err := filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() && (d.Name() == ".git" || d.Name() == "node_modules") {
			if err == nil {
				err = filepath.SkipDir
			}
			return err
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		dir, _ := filepath.Rel("../..", filepath.Dir(path))
		dir = filepath.ToSlash(dir)
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, spec := range f.Imports {
			imp, _ := strconv.Unquote(spec.Path.Value)
			rel, ours := strings.CutPrefix(imp, module)
			if !ours {
				continue
			}
			if rel == "internal/worker" && !strings.HasPrefix(dir, "cmd/") && dir != "internal/teststack" {
				t.Errorf("%s imports internal/worker: only commands and the harness may", path)
			}
			if dir == "internal/worker" {
				for _, f := range forbidden {
					if rel == f || strings.HasPrefix(rel, strings.TrimSuffix(f, "/")+"/") {
						t.Errorf("%s imports %s, which internal/worker may not", path, rel)
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Each package's doc says what of this project it may import; this table is
// those sentences, and the test holds the code to them (test files aside).
var mayImport = map[string][]string{
	"internal/campaign":   {"internal/clock", "internal/pause", "internal/ratelimit", "internal/redisbatch", "internal/wire", "job", "topology"},
	"internal/clock":      {},
	"internal/cmdmain":    {},
	"internal/consumer":   {"internal/clock", "internal/pause", "internal/retry", "internal/taskpool", "internal/tracing", "internal/wire", "job", "topology"},
	"internal/dedupe":     {"internal/pause", "internal/redisbatch"},
	"internal/dial":       {},
	"internal/loader":     {"internal/clock", "internal/retry", "internal/tracing", "job"},
	"internal/metrics":    {"internal/pause", "internal/push", "topology"},
	"internal/mpaassim":   {"internal/clock"},
	"internal/pause":      {},
	"internal/pipeline":   {"internal/campaign", "internal/clock", "internal/consumer", "internal/dedupe", "internal/pause", "internal/push", "internal/retry", "internal/taskpool", "internal/tracing", "job", "topology"},
	"internal/push":       {"job"},
	"internal/ratelimit":  {"internal/clock", "internal/pause"},
	"internal/recall":     {"internal/consumer", "internal/dedupe", "internal/pause", "internal/pipeline", "internal/push", "job"},
	"internal/redisbatch": {},
	"internal/retry":      {},
	"internal/taskpool":   {},
	"internal/testenv":    {},
	"internal/tracing":    {},
	"internal/wire":       {"job"},
	"job":                 {"topology"},
	"topology":            {},
}

func TestEachPackageImportsWhatItsDocSays(t *testing.T) {
	for dir, allowed := range mayImport {
		files, err := filepath.Glob(filepath.Join("../..", dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: no Go files (%v)", dir, err)
		}
		for _, path := range files {
			if strings.HasSuffix(path, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, spec := range f.Imports {
				imp, _ := strconv.Unquote(spec.Path.Value)
				if rel, ours := strings.CutPrefix(imp, module); ours && !slices.Contains(allowed, rel) {
					t.Errorf("%s imports %s: its package doc allows only %v", path, rel, allowed)
				}
			}
		}
	}
}
