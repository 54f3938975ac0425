// Package inject adds lifecycle hooks to Kubernetes manifests: the preStop
// commands of an injector-script config file, or one of three presets that
// wire envoy-lifecycle into a pod. It edits the YAML node trees that
// yamledit reads, and yamledit splices each edit into the original text, so
// bytes inject does not edit come out unchanged. See README.md.
package inject

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"envoy-lifecycle/yamledit"
)

// Exit codes of Main. They follow sysexits.h, like the rest of the binary.
const (
	// ExitOK: done, also when there was nothing to change.
	ExitOK = 0
	// ExitUsage: a bad command line, or a config file that is not YAML or
	// not of the injector script's shape (EX_USAGE).
	ExitUsage = 64
	// ExitManifest: the manifest is not YAML, or a field inject must read
	// or edit has the wrong shape (EX_DATAERR).
	ExitManifest = 65
	// ExitNoInput: the manifest or the config cannot be read (EX_NOINPUT).
	ExitNoInput = 66
	// ExitSoftware: an internal error (EX_SOFTWARE).
	ExitSoftware = 70
	// ExitCantCreate: the output cannot be written (EX_CANTCREAT).
	ExitCantCreate = 73
	// ExitMismatch: the manifest does not fit the request: a config entry's
	// resource or container is not in it, a preset cannot tell the app's
	// command, or the grace period is too short with --no-fix-grace
	// (EX_CONFIG).
	ExitMismatch = 78
)

// Error is a failure with the exit code it gives and, when it is about a
// file, the file and line.
type Error struct {
	Code int    // one of the Exit* codes
	File string // "" when not about a file
	Line int    // 0 when unknown
	Msg  string
}

var _ interface{ ExitStatus() int } = (*Error)(nil)

// Error implements error: "file:line: message".
func (e *Error) Error() string {
	switch {
	case e.File != "" && e.Line > 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	case e.File != "":
		return e.File + ": " + e.Msg
	}
	return e.Msg
}

// ExitStatus returns the exit code.
func (e *Error) ExitStatus() int { return e.Code }

// Options say what to inject. The zero value injects nothing: set Config
// or Preset.
type Options struct {
	// Config is the injector script's config (kind → name → container →
	// preStop command), already parsed by ParseConfig. Nil with a Preset.
	Config *Config
	// Preset is "envoy", "istio" or "shutdown-manager"; "" with a Config.
	Preset string

	// IstioStub adds a container named istio-proxy carrying only the hook
	// when the config or the istio preset needs one and the pod has none.
	IstioStub bool
	// FixGrace raises a terminationGracePeriodSeconds shorter than a
	// preset's drain budget plus GraceMargin; false makes it an error.
	FixGrace bool

	// Image is the envoy-lifecycle image of the containers a preset adds.
	// Empty means DefaultImage.
	Image string
	// Entrypoint is the command a preset wraps when an app container has
	// no command and no entry in Entrypoints. Empty means such a container
	// is an error.
	Entrypoint []string
	// Entrypoints maps a container name to the command to wrap when that
	// container has no command; it wins over Entrypoint. Nil means none.
	Entrypoints map[string][]string
	// AppContainers names the containers a preset wraps. Empty means every
	// container that is not the proxy.
	AppContainers []string
	// ProxyContainer names the proxy container. Empty means the rule in
	// README.md (names envoy and istio-proxy, images with envoy or proxyv2).
	ProxyContainer string
	// AdminPort is Envoy's admin port. Zero means 9901 (envoy,
	// shutdown-manager) or 15000 (istio).
	AdminPort int
	// DrainDeadline and StopTimeout, when not zero, are written to the app
	// container as ENVOY_LIFECYCLE_DRAIN_DEADLINE and _STOP_TIMEOUT (envoy,
	// istio); DrainDeadline is the hooks' ?deadline= (shutdown-manager).
	DrainDeadline, StopTimeout time.Duration
}

// DefaultImage is the envoy-lifecycle image of the containers a preset
// adds when Options.Image is empty. Pin a version with --image.
const DefaultImage = "ghcr.io/envoy-lifecycle/envoy-lifecycle:latest"

// Presets lists the valid presets.
var Presets = []string{"envoy", "istio", "shutdown-manager"}

// Inject returns the manifest src (named file in messages) with the hooks
// of o added, and the notes worth telling the user (one line each: a raised
// grace period, an added istio-proxy stub, a replaced hook, a skipped
// workload). On error out is nil, notes holds the notes that explain
// rather than announce a change (a skipped workload), and the error is an
// *Error or several joined with errors.Join.
func Inject(file string, src []byte, o Options) (out []byte, notes []string, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, notes, err = nil, nil, &Error{Code: ExitSoftware, File: file, Msg: fmt.Sprintf("internal error: %v", r)}
		}
	}()
	if (o.Config == nil) == (o.Preset == "") {
		return nil, nil, &Error{Code: ExitUsage, Msg: "give either a config or a preset"}
	}
	if line, ok := helmTemplate(src); ok {
		return nil, nil, &Error{Code: ExitManifest, File: file, Line: line,
			Msg: "this looks like a Helm template ({{ ... }}), not YAML: run `helm template` first and inject its output"}
	}
	if o.Preset != "" && !slices.Contains(Presets, o.Preset) {
		return nil, nil, &Error{Code: ExitUsage, Msg: fmt.Sprintf("unknown preset %q (valid: %s)", o.Preset, strings.Join(Presets, ", "))}
	}
	r := &run{file: file, o: o, matched: map[*hookEntry]bool{}, seenApps: map[string]bool{}, usedEntrypoints: map[string]bool{}}
	// One document at a time, from parse to text, so that a large file
	// holds few trees at once; the read-back of each changed document,
	// half the cost, runs beside the next one.
	v := newVerifier()
	// Room for what the hooks add, so a large file is not copied as out
	// doubles.
	out = make([]byte, 0, len(src)+len(src)/2)
	fail := func(i int, err error) ([]byte, []string, error) {
		if verr := v.wait(i); verr != nil {
			return nil, r.remarks, r.unfaithful(verr)
		}
		return nil, r.remarks, err
	}
	for i, d := range yamledit.Split(src) {
		if !mayHoldWorkload(d.Body()) {
			out = d.AppendText(out) // unread: most of a large file
			continue
		}
		if err := d.Parse(); err != nil {
			var e *yamledit.Error
			if errors.As(err, &e) {
				err = &Error{Code: ExitManifest, File: file, Line: e.Line, Msg: e.Msg}
			}
			out, _, err := fail(i, err)
			return out, nil, err
		}
		ws := collect(file, d)
		if o.Config != nil {
			err = r.applyConfig(ws)
		} else {
			err = r.applyPreset(ws)
		}
		if err != nil {
			return fail(i, err)
		}
		b, check, err := d.Splice()
		if err != nil {
			return fail(i, r.unfaithful(err))
		}
		v.check(i, check)
		d.Release()
		out = append(out, b...)
	}
	if err := v.wait(-1); err != nil {
		return nil, r.remarks, r.unfaithful(err)
	}
	if o.Config != nil {
		err = r.finishConfig()
	} else {
		err = r.finishPreset()
	}
	if err != nil {
		return nil, r.remarks, err
	}
	return out, r.notes, nil
}

// unfaithful is an edit yamledit could not splice faithfully.
func (r *run) unfaithful(err error) error {
	var e *yamledit.Error
	if errors.As(err, &e) && errors.Is(err, yamledit.ErrLineBreaks) {
		return &Error{Code: ExitManifest, File: r.file, Line: e.Line, Msg: e.Msg}
	}
	if errors.As(err, &e) {
		return &Error{Code: ExitSoftware, File: r.file, Line: e.Line, Msg: "internal error: " + e.Msg}
	}
	return err
}

// verifier runs read-back checks on a goroutine of its own, in order.
type verifier struct {
	in   chan indexedCheck
	done chan struct{}
	// first is the failed check of the lowest document index; set by the
	// goroutine, read after done.
	first    error
	firstIdx int
}

type indexedCheck struct {
	i     int
	check func() error
}

func newVerifier() *verifier {
	v := &verifier{in: make(chan indexedCheck, 64), done: make(chan struct{}), firstIdx: -1}
	go func() {
		defer close(v.done)
		for c := range v.in {
			if v.first != nil {
				continue // a later document's failure cannot come first
			}
			if err := c.check(); err != nil {
				v.first, v.firstIdx = err, c.i
			}
		}
	}()
	return v
}

func (v *verifier) check(i int, c func() error) { v.in <- indexedCheck{i, c} }

// wait ends the checks and returns the first failed one if it is of a
// document before document index before (of any, for -1): that failure
// comes before the error the caller has for document before.
func (v *verifier) wait(before int) error {
	close(v.in)
	<-v.done
	if v.first != nil && (before < 0 || v.firstIdx < before) {
		return v.first
	}
	return nil
}

// mayHoldWorkload reports a document that names a kind inject edits, or a
// List: only those are parsed. A scan, not a regexp: it reads every
// document of a large file.
func mayHoldWorkload(b []byte) bool {
	for i := 0; ; {
		j := bytes.Index(b[i:], []byte("kind"))
		if j < 0 {
			return false
		}
		i += j + len("kind")
		k := skipQuote(b, i)
		k = skipBlanks(b, k)
		if k >= len(b) || b[k] != ':' {
			continue
		}
		k = skipQuote(b, skipBlanks(b, k+1))
		w := k
		for w < len(b) && (b[w] >= 'A' && b[w] <= 'Z' || b[w] >= 'a' && b[w] <= 'z') {
			w++
		}
		word := b[k:w]
		if bytes.HasSuffix(word, []byte("List")) {
			return true
		}
		for _, k := range kinds {
			if string(word) == k.kind {
				return true
			}
		}
	}
}

func skipBlanks(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	return i
}

func skipQuote(b []byte, i int) int {
	if i < len(b) && (b[i] == '"' || b[i] == '\'') {
		i++
	}
	return i
}

// helmTemplate reports a text with a Go template action ("{{ .Values.x }}",
// "{{- if ... }}") outside comments, and the line of the first.
func helmTemplate(src []byte) (int, bool) {
	if !bytes.Contains(src, []byte("{{")) {
		return 0, false
	}
	line := 1
	for len(src) > 0 {
		l := src
		if i := bytes.IndexByte(src, '\n'); i >= 0 {
			l, src = src[:i], src[i+1:]
		} else {
			src = nil
		}
		if t := bytes.TrimLeft(l, " \t"); len(t) > 0 && t[0] != '#' && templateAction.Match(l) {
			return line, true
		}
		line++
	}
	return 0, false
}

// templateAction matches a Go template action: "{{", an optional "-",
// then a field, variable, keyword or comment, and later "}}". A YAML flow
// mapping inside a flow mapping ("{{a: b}: c}") does not match.
var templateAction = regexp.MustCompile(`\{\{-?\s*(\.|\$|/\*|(if|else|end|range|with|define|template|include|toYaml|tpl|printf|default|required|quote|lookup|nindent|indent)\b).*\}\}`)

// run is one Inject call's state.
type run struct {
	file  string
	o     Options
	notes []string // every note, in order
	// remarks are the notes that explain rather than announce a change
	// (a skipped workload, an assumption): the ones still true when
	// nothing is written.
	remarks []string

	errs      []error             // mismatches, reported at the end
	matched   map[*hookEntry]bool // config entries found
	seenApps  map[string]bool     // --app-container names found
	seenProxy bool                // the --proxy-container was found
	// usedEntrypoints are the containers an Entrypoints entry was used for.
	usedEntrypoints map[string]bool
	workloads       int // preset: workloads seen
	done            int // preset: workloads injected
}

// notef notes a change to the manifest.
func (r *run) notef(format string, args ...any) {
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

// remarkf notes something that holds whether or not the output is
// written.
func (r *run) remarkf(format string, args ...any) {
	n := fmt.Sprintf(format, args...)
	r.notes, r.remarks = append(r.notes, n), append(r.remarks, n)
}

// ExitCode returns the exit code of an error from Inject or ParseConfig:
// the code of the first *Error in it, or ExitSoftware.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var e interface{ ExitStatus() int }
	if errors.As(err, &e) {
		return e.ExitStatus()
	}
	return ExitSoftware
}
