package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestLogCalls does what hclogvet would (it is not on the module proxy):
// every hclog call has a constant lowercase message and key/value pairs
// with constant string keys.
func TestLogCalls(t *testing.T) {
	levels := map[string]bool{"Trace": true, "Debug": true, "Info": true, "Warn": true, "Error": true}
	fset := token.NewFileSet()
	checked := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") && path != "." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || !levels[sel.Sel.Name] || len(call.Args) == 0 {
				return true
			}
			msg, ok := call.Args[0].(*ast.BasicLit)
			if !ok || msg.Kind != token.STRING {
				return true // not an hclog-style call (e.g. t.Error(err))
			}
			if call.Ellipsis.IsValid() {
				return true
			}
			checked++
			pos := fset.Position(call.Pos())
			text, _ := strconv.Unquote(msg.Value)
			if text != strings.ToLower(text[:1])+text[1:] || strings.ContainsAny(text, "%\n") {
				t.Errorf("%s: log message %q should be constant, lowercase, one line", pos, text)
			}
			if len(call.Args)%2 != 1 {
				t.Errorf("%s: %s(%q, ...) has an odd number of key/value arguments", pos, sel.Sel.Name, text)
				return true
			}
			for i := 1; i < len(call.Args); i += 2 {
				if k, ok := call.Args[i].(*ast.BasicLit); !ok || k.Kind != token.STRING {
					t.Errorf("%s: %s(%q, ...) key %d is not a string constant", pos, sel.Sel.Name, text, (i+1)/2)
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 20 {
		t.Errorf("checked only %d log calls; the scan is broken", checked)
	}
}
