package envoy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
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
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), MaxStatsLine)
	var (
		stats []Stat
		line  int
	)
	for sc.Scan() {
		line++
		b := sc.Bytes()
		i := bytes.Index(b, statSep)
		if i <= 0 {
			continue
		}
		v, err := strconv.ParseUint(string(bytes.TrimSpace(b[i+len(statSep):])), 10, 64)
		if err != nil {
			continue
		}
		stats = append(stats, Stat{Name: string(b[:i]), Value: v})
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("cannot parse stats: line %d longer than %d bytes: %w", line+1, MaxStatsLine, err)
		}
		return nil, fmt.Errorf("cannot parse stats: %w", err)
	}
	return stats, nil
}

// ParseStatsJSON parses Envoy's /stats?format=json body,
// {"stats":[{"name":"…","value":N},…]}. Values are decoded as json.Number so
// uint64 counters beyond 2^53 stay exact. Text readouts (string values),
// the name-less histograms element, and values that are not uint64 are
// skipped. A body without a "stats" array is an error.
func ParseStatsJSON(r io.Reader) ([]Stat, error) {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	var doc struct {
		Stats []struct {
			Name  string `json:"name"`
			Value any    `json:"value"`
		} `json:"stats"`
	}
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("cannot parse stats json: %w", err)
	}
	if doc.Stats == nil {
		return nil, errors.New(`cannot parse stats json: missing "stats" array`)
	}
	stats := make([]Stat, 0, len(doc.Stats))
	for _, s := range doc.Stats {
		n, ok := s.Value.(json.Number)
		// Names with ": " cannot come from Envoy and would break the text
		// round trip; drop them like any other garbage.
		if !ok || s.Name == "" || strings.Contains(s.Name, ": ") {
			continue
		}
		v, err := strconv.ParseUint(string(n), 10, 64)
		if err != nil {
			continue
		}
		stats = append(stats, Stat{Name: s.Name, Value: v})
	}
	return stats, nil
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

// Stats fetches GET /stats in text format and parses it with ParseStatsText.
// The filter is sent unencoded except for control, space, non-ASCII, '%',
// '&' and '#' bytes, which are percent-encoded: a raw regex reaches every
// Envoy version verbatim, while percent-encoding is decoded only by 1.16+.
func (c *Client) Stats(ctx context.Context, q StatsQuery) ([]Stat, error) {
	resp, err := c.send(ctx, c.hc, http.MethodGet, statsPath(q), false)
	if err != nil {
		return nil, fmt.Errorf("cannot get stats: %w", err)
	}
	defer drainClose(resp.Body)
	stats, err := ParseStatsText(newCappedReader(resp.Body, maxStatsBody))
	if err != nil {
		return nil, fmt.Errorf("cannot get stats: %w", err)
	}
	return stats, nil
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

// ActiveConnections fetches the stats s.Filter selects and returns
// CountConnections over them. It does not ask for usedonly: with it an idle
// listener's gauge is absent, and "matched 0" would no longer tell a missing
// stat from zero connections.
func (c *Client) ActiveConnections(ctx context.Context, s Selector) (sum uint64, matched int, err error) {
	if s.Include == nil {
		return 0, 0, errors.New("cannot count active connections: selector has no Include pattern")
	}
	filter := s.Filter
	if filter == "" {
		filter = s.Include.String()
	}
	stats, err := c.Stats(ctx, StatsQuery{Filter: filter})
	if err != nil {
		return 0, 0, fmt.Errorf("cannot count active connections: %w", err)
	}
	sum, matched = CountConnections(stats, s)
	return sum, matched, nil
}
