package envoy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// MaxStatsLine is the longest text-format stats line ParseStatsText accepts.
// Real lines are well under 1 KiB; a longer one means this is not a stats dump.
const MaxStatsLine = 64 << 10

// Stat is one integer counter or gauge.
type Stat struct {
	Name  string // full stat name, e.g. "listener.0.0.0.0_8080.downstream_cx_active"
	Value uint64
}

// statSep separates name and value in the text format; stat names never
// contain it.
var statSep = []byte(": ")

// ParseStatsText parses Envoy's text /stats format, one "name: value" per
// line. It splits each line on the first ": " and keeps the lines whose
// value is a uint64; text readouts (`name: "text"`), histograms
// (`name: P0(...)...`, `name: No recorded values`), blank and other
// non-integer lines are skipped. A line longer than MaxStatsLine is an error.
// Garbage yields an error or no stats, never a panic.
func ParseStatsText(r io.Reader) ([]Stat, error) {
	return parseStatsText(r, nil, 0)
}

// parseStatsText is ParseStatsText keeping only the names keep accepts (nil
// keeps all), and at most max of them (0: no limit; past it ErrTooLarge).
func parseStatsText(r io.Reader, keep *regexp.Regexp, max int) ([]Stat, error) {
	var stats []Stat
	err := scanStats(r, func(name, value []byte) error {
		v, err := strconv.ParseUint(string(value), 10, 64)
		if err != nil || keep != nil && !keep.Match(name) {
			return nil
		}
		if max > 0 && len(stats) >= max {
			return fmt.Errorf("%w: more than %d matching stats", ErrTooLarge, max)
		}
		stats = append(stats, Stat{Name: string(name), Value: v})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return stats, nil
}

// scanStats streams the text format: fn gets each "name: value" line's
// name and trimmed value, valid only during the call, and may stop the scan
// with an error. Memory stays within one line (MaxStatsLine).
func scanStats(r io.Reader, fn func(name, value []byte) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), MaxStatsLine)
	line := 0
	for sc.Scan() {
		line++
		b := sc.Bytes()
		i := bytes.Index(b, statSep)
		if i <= 0 {
			continue
		}
		if err := fn(b[:i], bytes.TrimSpace(b[i+len(statSep):])); err != nil {
			return fmt.Errorf("cannot parse stats: %w", err)
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("cannot parse stats: line %d longer than %d bytes: %w", line+1, MaxStatsLine, err)
		}
		return fmt.Errorf("cannot parse stats: %w", err)
	}
	return nil
}

// StatsQuery selects what GET /stats returns.
type StatsQuery struct {
	// Filter is a regular expression Envoy matches against stat names
	// (RE2 partial match, so anchor with ^…$ for exact names). Empty means
	// no filter.
	Filter string
	// UsedOnly drops stats that were never written. Note that an idle
	// listener's gauge is then absent rather than 0.
	UsedOnly bool
}

// statsPath builds /stats[?usedonly][&filter=…] for the text format.
func statsPath(q StatsQuery) string {
	var b strings.Builder
	b.WriteString(pathStats)
	sep := byte('?')
	if q.UsedOnly {
		b.WriteString("?usedonly")
		sep = '&'
	}
	if q.Filter != "" {
		b.WriteByte(sep)
		b.WriteString("filter=")
		b.WriteString(escapeFilter(q.Filter))
	}
	return b.String()
}

// escapeFilter percent-encodes only the bytes that would break the query
// string or the request line: controls, space, non-ASCII, '%', '&' and '#'.
// Regex metacharacters such as ^ $ \ | ( ) + stay raw on purpose: Envoy
// percent-decodes query values only since 1.16, and raw regexes (as Istio and
// Envoy Gateway send them) work on every version. url.QueryEscape would
// break filters like "a|b" on Envoy before 1.16 and turn '+' into "%2B".
func escapeFilter(s string) string {
	unsafe := func(c byte) bool { return c <= ' ' || c >= 0x7f || c == '%' || c == '&' || c == '#' }
	i := 0
	for i < len(s) && !unsafe(s[i]) {
		i++
	}
	if i == len(s) {
		return s
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) + 16)
	b.WriteString(s[:i])
	for ; i < len(s); i++ {
		if c := s[i]; unsafe(c) {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// maxKeptStats bounds the stats Stats returns: its callers ask for a few
// filtered gauges, and an admin that ignores the filter must not fill memory.
const maxKeptStats = 100_000

// Stats fetches GET /stats in text format and parses it as ParseStatsText
// does, keeping only the stats q.Filter matches (checked here too, as a Go
// regexp, when it compiles), at most 100,000 of them, from at most 64 MiB.
// A bigger answer is an error wrapping ErrTooLarge.
// The filter is sent unencoded except for control, space, non-ASCII, '%',
// '&' and '#' bytes, which are percent-encoded: a raw regex reaches every
// Envoy version verbatim, while percent-encoding is decoded only by 1.16+.
func (c *Client) Stats(ctx context.Context, q StatsQuery) ([]Stat, error) {
	resp, err := c.send(ctx, c.hc, http.MethodGet, statsPath(q), false)
	if err != nil {
		return nil, fmt.Errorf("cannot get stats: %w", err)
	}
	defer drainClose(resp.Body)
	var keep *regexp.Regexp
	if q.Filter != "" {
		keep, _ = regexp.Compile(q.Filter) // Envoy's own RE2; one that does not compile here keeps all
	}
	stats, err := parseStatsText(newCappedReader(resp.Body, maxStatsBody), keep, maxKeptStats)
	if err != nil {
		return nil, fmt.Errorf("cannot get stats: %w", err)
	}
	return stats, nil
}

// gaugeLimit is where a connection or request gauge stops being possible:
// Envoy's gauges are uint64, and one decremented below zero wraps to
// 2^64-n (2^64-1 is the usual underflow).
const gaugeLimit = 1 << 63

// gaugeValue reads a stat value. ok is false for what is no integer at all
// (text readouts, histograms); impossible is true for an integer no gauge can
// hold: negative, beyond uint64, or at or above 2^63.
func gaugeValue(b []byte) (v uint64, impossible, ok bool) {
	digits := bytes.TrimPrefix(b, []byte("-"))
	if len(digits) == 0 {
		return 0, false, false
	}
	overflow := false
	// By hand rather than strconv.ParseUint(string(b)): no allocation per
	// line, so a huge answer costs no garbage either.
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false, false
		}
		d := uint64(c - '0')
		if v > (math.MaxUint64-d)/10 {
			overflow = true
		}
		v = v*10 + d
	}
	if overflow || len(digits) != len(b) {
		return 0, true, true
	}
	return v, v >= gaugeLimit, true
}

// Selector picks the stats CountConnections adds up: those matching Include
// and not matching Exclude.
type Selector struct {
	Include *regexp.Regexp // nil matches nothing
	Exclude *regexp.Regexp // nil excludes nothing
	// Filter is the server-side /stats filter ActiveConnections sends to
	// cut the body. It must match at least every stat Include matches.
	// Empty means Include's own source text.
	Filter string
}

var (
	connInclude = regexp.MustCompile(`^listener\.(.+)\.downstream_cx_active$`)
	// Admin; per-thread splits of the parent gauge (adding them would
	// double count); Envoy internal listeners; Istio's infrastructure
	// listeners (admin 15000, agent status 15020, health 15021, prometheus
	// 15090) and the outbound capture listener 15001, whose connections
	// are the app's own and must not hold up an inbound drain.
	connExclude = regexp.MustCompile(`^listener\.admin\.|\.(worker_[0-9]+|main_thread)\.|^listener\.envoy_internal_|_(15000|15001|15020|15021|15090)\.downstream_cx_active$`)
	reqInclude  = regexp.MustCompile(`^http\.(.+)\.downstream_rq_active$`)
	reqExclude  = regexp.MustCompile(`^http\.admin\.`)
)

// DefaultConnSelector counts open downstream connections: the per-listener
// gauges listener.<address>.downstream_cx_active, without the admin
// listener, the .worker_N. / .main_thread. sub-stats, Envoy internal
// listeners (listener.envoy_internal_*), and Istio's infrastructure and
// outbound listeners on ports 15000, 15001, 15020, 15021 and 15090.
// Inbound 15006 and application listeners count.
func DefaultConnSelector() Selector {
	return Selector{Include: connInclude, Exclude: connExclude, Filter: `^listener\..*downstream_cx_active$`}
}

// DefaultRequestSelector counts active downstream requests,
// http.<prefix>.downstream_rq_active, without the admin HTTP connection
// manager (http.admin.).
func DefaultRequestSelector() Selector {
	return Selector{Include: reqInclude, Exclude: reqExclude, Filter: `downstream_rq_active$`}
}

// CountConnections adds up the values of the stats s selects. matched is how
// many stats were selected; 0 means the gauge is missing, which callers
// should not read as "no connections". The sum saturates at MaxUint64.
func CountConnections(stats []Stat, s Selector) (sum uint64, matched int) {
	if s.Include == nil {
		return 0, 0
	}
	for _, st := range stats {
		if !s.Include.MatchString(st.Name) || s.Exclude != nil && s.Exclude.MatchString(st.Name) {
			continue
		}
		matched++
		if st.Value > math.MaxUint64-sum {
			sum = math.MaxUint64
		} else {
			sum += st.Value
		}
	}
	return sum, matched
}

// maxLoggedImpossible bounds the impossible values one count logs one by one.
const maxLoggedImpossible = 3

// ActiveConnections fetches the stats s.Filter selects and adds up those s
// selects, as CountConnections does, streaming: memory stays within one line
// whatever the size of the answer (at most 64 MiB; past it an error wrapping
// ErrTooLarge). A selected stat whose value is impossible for a gauge
// (negative, beyond uint64, or at or above 2^63, such as Envoy's underflow
// 2^64-1) counts as matched with the value 0, and is logged as a warning.
// It does not ask for usedonly: with it an idle listener's gauge is absent,
// and "matched 0" would no longer tell a missing stat from zero connections.
func (c *Client) ActiveConnections(ctx context.Context, s Selector) (sum uint64, matched int, err error) {
	if s.Include == nil {
		return 0, 0, errors.New("cannot count active connections: selector has no Include pattern")
	}
	filter := s.Filter
	if filter == "" {
		filter = s.Include.String()
	}
	resp, err := c.send(ctx, c.hc, http.MethodGet, statsPath(StatsQuery{Filter: filter}), false)
	if err != nil {
		return 0, 0, fmt.Errorf("cannot count active connections: cannot get stats: %w", err)
	}
	defer drainClose(resp.Body)
	sum, matched, err = countStats(newCappedReader(resp.Body, maxStatsBody), s, c.log)
	if err != nil {
		return 0, 0, fmt.Errorf("cannot count active connections: %w", err)
	}
	return sum, matched, nil
}

// countStats streams a text /stats body and adds up what s selects, as
// ActiveConnections documents.
func countStats(r io.Reader, s Selector, log hclog.Logger) (sum uint64, matched int, err error) {
	impossible := 0
	err = scanStats(r, func(name, value []byte) error {
		if !s.Include.Match(name) || s.Exclude != nil && s.Exclude.Match(name) {
			return nil
		}
		v, bad, ok := gaugeValue(value)
		switch {
		case !ok:
			return nil
		case bad:
			impossible++
			if impossible <= maxLoggedImpossible {
				log.Warn("impossible stat value; counted as 0", "stat", string(name), "value", string(value))
			}
			v = 0
		}
		matched++
		if v > math.MaxUint64-sum {
			sum = math.MaxUint64
		} else {
			sum += v
		}
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	if impossible > maxLoggedImpossible {
		log.Warn("impossible stat values; counted as 0", "stats", impossible)
	}
	return sum, matched, nil
}
