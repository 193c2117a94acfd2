package service_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/mpaas-push/pushworker/"

// The package doc's rules: no part of the worker imports service (commands and
// the harness do), and service imports nothing of the operators' side nor
// anything made for tests. Test files may import what they like.
func TestImports(t *testing.T) {
	forbidden := []string{"internal/ops", "internal/loader", "internal/cli", "internal/harness", "internal/testenv", "internal/chaos", "cmd/"}
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
			if rel == "internal/service" && !strings.HasPrefix(dir, "cmd/") && dir != "internal/harness" {
				t.Errorf("%s imports internal/service: only commands and the harness may", path)
			}
			if dir == "internal/service" {
				for _, f := range forbidden {
					if rel == f || strings.HasPrefix(rel, strings.TrimSuffix(f, "/")+"/") {
						t.Errorf("%s imports %s, which service may not", path, rel)
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
