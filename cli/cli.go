// Package cli holds the pure parts of the command line shared by every mode:
// the subcommand suggestion, help wrapping and the version report.
package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
	"unicode/utf8"
)

// Suggest returns the subcommand that name is a likely typo of: exactly one
// edit (insert, delete, substitute or swap two neighbours) away, and only
// when name is not a program found in PATH (inPath), since wrapping any
// command is the default. "" when there is none or more than one.
func Suggest(name string, subcommands []string, inPath func(string) bool) string {
	if name == "" || strings.ContainsRune(name, '/') {
		return ""
	}
	var hit string
	for _, s := range subcommands {
		if s == name {
			return ""
		}
		if oneEdit(name, s) {
			if hit != "" {
				return "" // ambiguous: say nothing rather than guess
			}
			hit = s
		}
	}
	if hit == "" || (inPath != nil && inPath(name)) {
		return ""
	}
	return hit
}

// oneEdit reports whether a and b are one insert, delete, substitution or
// transposition of neighbours apart.
func oneEdit(a, b string) bool {
	ra, rb := []rune(a), []rune(b)
	if len(ra) < len(rb) {
		ra, rb = rb, ra
	}
	switch len(ra) - len(rb) {
	case 0:
		var diff []int
		for i := range ra {
			if ra[i] != rb[i] {
				diff = append(diff, i)
			}
		}
		switch len(diff) {
		case 1:
			return true
		case 2:
			i, j := diff[0], diff[1]
			return j == i+1 && ra[i] == rb[j] && ra[j] == rb[i]
		}
		return false
	case 1:
		// ra is rb with one rune inserted.
		i := 0
		for i < len(rb) && ra[i] == rb[i] {
			i++
		}
		return string(ra[i+1:]) == string(rb[i:])
	}
	return false
}

// Width is the column help text is wrapped at.
const Width = 100

// Wrap wraps text at width columns. Each line keeps its indentation, and
// its continuation lines are indented to where its text starts after a
// two-space gap (a table's last column), or to its own indentation. Words
// longer than the width stay whole.
func Wrap(text string, width int) string {
	var b strings.Builder
	lines := strings.Split(text, "\n")
	for i, line := range lines {
		if i > 0 {
			b.WriteByte('\n')
		}
		wrapLine(&b, strings.TrimRight(line, " "), width)
	}
	return b.String()
}

func wrapLine(b *strings.Builder, line string, width int) {
	r := []rune(line)
	if len(r) <= width {
		b.WriteString(line)
		return
	}
	hang := hangingIndent(line, width)
	pad := []rune(strings.Repeat(" ", hang))
	for len(r) > width {
		// The last space within the width that leaves text after the indent.
		cut := -1
		for i := width; i > hang; i-- {
			if r[i] == ' ' && r[i-1] != ' ' {
				cut = i
				break
			}
		}
		if cut < 0 { // one word longer than the line: keep it whole
			for i := width + 1; i < len(r); i++ {
				// After a word: a space in the indentation cut nothing and looped forever.
				if r[i] == ' ' && r[i-1] != ' ' {
					cut = i
					break
				}
			}
			if cut < 0 {
				break
			}
		}
		b.WriteString(strings.TrimRight(string(r[:cut]), " "))
		b.WriteByte('\n')
		rest := []rune(strings.TrimLeft(string(r[cut:]), " "))
		r = append(append([]rune{}, pad...), rest...)
	}
	b.WriteString(string(r))
}

// hangingIndent is where continuation lines start: after the last gap of two
// or more spaces (the start of a table's last column), if that leaves room;
// else the line's own indentation.
func hangingIndent(line string, width int) int {
	indent := len(line) - len(strings.TrimLeft(line, " "))
	if i := strings.LastIndex(line, "  "); i >= indent {
		col := utf8.RuneCountInString(line[:i+2])
		if col <= width/2 {
			return col
		}
	}
	return indent
}

// Version is what `version` reports.
type Version struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	Modified  bool   `json:"modified,omitempty"` // built from a tree with uncommitted changes
	BuildTime string `json:"build_time,omitempty"`
	GoVersion string `json:"go_version"`
}

// BuildVersion combines the stamped version and commit (-ldflags -X) with
// what Go recorded in the build info: a plain `go build` of a git checkout
// still knows its revision. bi may be nil (debug.ReadBuildInfo failed).
func BuildVersion(version, commit string, bi *debug.BuildInfo) Version {
	v := Version{Version: version, Commit: commit}
	if bi == nil {
		return v
	}
	v.GoVersion = bi.GoVersion
	if v.Version == "" || v.Version == "dev" {
		if mv := bi.Main.Version; mv != "" && mv != "(devel)" {
			v.Version = mv // go install module@version
		}
	}
	if v.Commit != "" && v.Commit != "none" {
		// A stamped commit is the builder's word; the tree Go saw may be
		// another (or none), so its revision, time and state are not mixed in.
		return v
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Commit = s.Value
		case "vcs.time":
			v.BuildTime = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

// String is the one-line form: `envoy-lifecycle dev (commit 1a2b3c4d5e6f, modified, go1.26.8)`.
func (v Version) String() string {
	commit := v.Commit
	if len(commit) > 12 {
		commit = commit[:12]
	}
	if v.Modified {
		commit += ", modified"
	}
	if v.GoVersion != "" {
		commit += ", " + v.GoVersion
	}
	return fmt.Sprintf("envoy-lifecycle %s (commit %s)", v.Version, commit)
}

// Write prints v, as JSON when asJSON.
func (v Version) Write(w io.Writer, asJSON bool) error {
	if !asJSON {
		_, err := fmt.Fprintln(w, v.String())
		return err
	}
	enc := json.NewEncoder(w)
	return enc.Encode(v)
}
