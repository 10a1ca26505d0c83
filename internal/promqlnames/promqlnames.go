// Package promqlnames finds the metric names a PromQL expression reads, so that tests can check
// dashboards and alert rules against what the manager exposes.
//
// It is a tokenizer, not a parser: Prometheus' own parser (github.com/prometheus/prometheus/promql/parser)
// would move client_golang, prometheus/common and dozens of other modules of this project to
// newer versions. PromQL's lexical rules are enough to tell metric names from everything else:
//
//   - string literals ("...", '...', `...`) and comments (# to the end of the line) are skipped;
//   - inside {...} only a __name__ matcher names a metric (its string, with = only); the rest are
//     label matchers;
//   - [...] holds a range or a subquery's step: durations, or a Grafana variable such as
//     $__rate_interval;
//   - a name followed by ( is a function or an aggregation, and by, without, on, ignoring,
//     group_left and group_right are followed by a list of labels, which is skipped;
//   - the keywords (and, or, unless, bool, offset, atan2, Inf, NaN, the aggregations sum, max, ...)
//     and numbers and durations are not names;
//   - a Grafana variable ($name, ${name}, [[name]]) is not a name;
//   - every other identifier is a metric name.
package promqlnames

import (
	"fmt"
	"slices"
	"strings"
)

// keywords are PromQL's reserved words, which may stand where a metric name could without a "("
// after them: operators, modifiers, and the aggregations, whose "(" may come after a by or
// without clause (sum by (le) (...)).
var keywords = map[string]bool{
	"and": true, "or": true, "unless": true, "bool": true, "offset": true, "atan2": true,
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"inf": true, "nan": true,
	"sum": true, "avg": true, "count": true, "min": true, "max": true, "group": true, "stddev": true,
	"stdvar": true, "topk": true, "bottomk": true, "count_values": true, "quantile": true,
	"limitk": true, "limit_ratio": true,
}

// grouping are the keywords followed by a parenthesised list of label names.
var grouping = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
}

// MetricNames returns the metric names expr reads, sorted and without duplicates. It returns an
// error for an unterminated string, brace or bracket, or a character PromQL does not have.
func MetricNames(expr string) ([]string, error) {
	l := lexer{s: expr}
	names := map[string]bool{}
	for {
		l.skipSpace()
		if l.done() {
			break
		}
		c := l.s[l.i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			if _, err := l.str(); err != nil {
				return nil, err
			}
		case c == '#':
			for !l.done() && l.s[l.i] != '\n' {
				l.i++
			}
		case c == '{':
			name, err := l.matchers()
			if err != nil {
				return nil, err
			}
			if name != "" {
				names[name] = true
			}
		case c == '[':
			if strings.HasPrefix(l.s[l.i:], "[[") {
				// A Grafana variable in its old form, [[name]].
				end := strings.Index(l.s[l.i:], "]]")
				if end < 0 {
					return nil, fmt.Errorf("%q: unterminated [[ at %d", expr, l.i)
				}
				l.i += end + 2
				continue
			}
			end := strings.IndexByte(l.s[l.i:], ']')
			if end < 0 {
				return nil, fmt.Errorf("%q: unterminated [ at %d", expr, l.i)
			}
			l.i += end + 1
		case c == '$':
			l.variable()
		case isDigit(c) || (c == '.' && l.i+1 < len(l.s) && isDigit(l.s[l.i+1])):
			// A number or a duration: 0.99, 1e3, 0x1f, 5m, 1h30m.
			for !l.done() && (isIdent(l.s[l.i]) || l.s[l.i] == '.') {
				l.i++
			}
		case isIdentStart(c):
			word := l.ident()
			l.skipSpace()
			next := byte(0)
			if !l.done() {
				next = l.s[l.i]
			}
			lower := strings.ToLower(word)
			switch {
			case grouping[lower] && next == '(':
				end := strings.IndexByte(l.s[l.i:], ')')
				if end < 0 {
					return nil, fmt.Errorf("%q: unterminated %s( at %d", expr, word, l.i)
				}
				l.i += end + 1
			case next == '(' || keywords[lower]:
				// A function, an aggregation or a keyword.
			default:
				names[word] = true
			}
		case strings.IndexByte("()+-*/%^=!<>,@", c) >= 0:
			l.i++
		default:
			return nil, fmt.Errorf("%q: unexpected %q at %d", expr, c, l.i)
		}
	}
	out := make([]string, 0, len(names))
	for n := range names {
		out = append(out, n)
	}
	slices.Sort(out)
	return out, nil
}

type lexer struct {
	s string
	i int
}

func (l *lexer) done() bool { return l.i >= len(l.s) }

func (l *lexer) skipSpace() {
	for !l.done() && strings.IndexByte(" \t\r\n", l.s[l.i]) >= 0 {
		l.i++
	}
}

func (l *lexer) ident() string {
	start := l.i
	for !l.done() && isIdent(l.s[l.i]) {
		l.i++
	}
	return l.s[start:l.i]
}

// variable skips a Grafana variable: $name or ${name...}.
func (l *lexer) variable() {
	l.i++
	if !l.done() && l.s[l.i] == '{' {
		if end := strings.IndexByte(l.s[l.i:], '}'); end >= 0 {
			l.i += end + 1
			return
		}
	}
	for !l.done() && isIdent(l.s[l.i]) {
		l.i++
	}
}

// str reads a string literal and returns its content (escapes kept as written: metric names have
// none).
func (l *lexer) str() (string, error) {
	quote := l.s[l.i]
	start := l.i
	l.i++
	var b strings.Builder
	for !l.done() {
		c := l.s[l.i]
		switch {
		case c == '\\' && quote != '`' && l.i+1 < len(l.s):
			b.WriteByte(l.s[l.i+1])
			l.i += 2
			continue
		case c == quote:
			l.i++
			return b.String(), nil
		}
		b.WriteByte(c)
		l.i++
	}
	return "", fmt.Errorf("%q: unterminated string at %d", l.s, start)
}

// matchers reads {...} and returns the metric name of a __name__="..." matcher, if any.
func (l *lexer) matchers() (string, error) {
	start := l.i
	l.i++
	name := ""
	for {
		l.skipSpace()
		if l.done() {
			return "", fmt.Errorf("%q: unterminated { at %d", l.s, start)
		}
		c := l.s[l.i]
		switch {
		case c == '}':
			l.i++
			return name, nil
		case c == ',':
			l.i++
		case c == '"' || c == '\'' || c == '`':
			// A quoted label name (UTF-8 names) or a metric name standing alone: {"my.metric"}.
			if _, err := l.str(); err != nil {
				return "", err
			}
		case isIdentStart(c):
			label := l.ident()
			l.skipSpace()
			op := ""
			for !l.done() && strings.IndexByte("=!~", l.s[l.i]) >= 0 {
				op += string(l.s[l.i])
				l.i++
			}
			l.skipSpace()
			if op == "" || l.done() || strings.IndexByte("\"'`", l.s[l.i]) < 0 {
				return "", fmt.Errorf("%q: label matcher %s without an operator and a string at %d", l.s, label, l.i)
			}
			value, err := l.str()
			if err != nil {
				return "", err
			}
			if label == "__name__" && op == "=" {
				name = value
			}
		case c == '$':
			l.variable()
		default:
			return "", fmt.Errorf("%q: unexpected %q in a label matcher at %d", l.s, c, l.i)
		}
	}
}

func isDigit(c byte) bool      { return c >= '0' && c <= '9' }
func isIdentStart(c byte) bool { return c == '_' || c == ':' || (c|0x20 >= 'a' && c|0x20 <= 'z') }
func isIdent(c byte) bool      { return isIdentStart(c) || isDigit(c) }
