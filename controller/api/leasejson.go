package api

import (
	"encoding/json"
	"strconv"
	"time"
)

// AppendJSON appends l's JSON (what MarshalJSON writes) to dst without
// reflection: every lease write's answer carries a lease, and encoding it
// through encoding/json twice (the response, then the lease's
// MarshalJSON, whose output it re-scans) was a tenth of the server's
// request handling in the profile (BENCHMARKS.md, "Profile"). Values that
// need escaping, odd times and pins go through encoding/json, so the
// bytes are always the same as its.
func (l Lease) AppendJSON(dst []byte) ([]byte, error) {
	dst = append(dst, `{"holder":`...)
	dst = appendJSONString(dst, l.Holder)
	dst = append(dst, `,"term":`...)
	dst = strconv.AppendUint(dst, l.Term, 10)
	dst = append(dst, `,"start":`...)
	dst, err := appendJSONTime(dst, l.Start)
	if err != nil {
		return nil, err
	}
	dst = append(dst, `,"duration":`...)
	dst = appendJSONString(dst, l.Duration.String())
	dst = append(dst, `,"expiry":`...)
	if dst, err = appendJSONTime(dst, l.Expiry); err != nil {
		return nil, err
	}
	dst = append(dst, `,"pins":`...)
	if len(l.Pins) == 0 {
		dst = append(dst, `[]`...)
	} else {
		pins, err := json.Marshal(l.Pins)
		if err != nil {
			return nil, err
		}
		dst = append(dst, pins...)
	}
	dst = append(dst, `,"step_down":`...)
	dst = strconv.AppendBool(dst, l.StepDown)
	return append(dst, '}'), nil
}

// appendJSONString appends s as encoding/json writes it: plain printable
// ASCII as is, anything else (escapes, HTML characters, non-ASCII) by
// encoding/json itself.
func appendJSONString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s) // a string always encodes
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// appendJSONTime appends t as time.Time's MarshalJSON does (RFC 3339 with
// nanoseconds), through it for what is not a UTC time of years 0 to 9999.
func appendJSONTime(dst []byte, t time.Time) ([]byte, error) {
	if y := t.Year(); y < 0 || y > 9999 || t.Location() != time.UTC {
		b, err := t.MarshalJSON()
		if err != nil {
			return nil, err
		}
		return append(dst, b...), nil
	}
	dst = append(dst, '"')
	dst = t.AppendFormat(dst, time.RFC3339Nano)
	return append(dst, '"'), nil
}

// AppendJSON appends r's JSON (what encoding/json writes for it) to dst:
// the answer to every lease write. Keep it in step with LeaseResponse's
// fields.
func (r LeaseResponse) AppendJSON(dst []byte) ([]byte, error) {
	dst = append(dst, `{"lease":`...)
	dst, err := r.Lease.AppendJSON(dst)
	if err != nil {
		return nil, err
	}
	return append(dst, '}'), nil
}

// DecodeJSON decodes the answer to a lease write into r, as
// json.Unmarshal would (the client calls it for any answer type that has
// it, as the server calls AppendJSON). The answer AppendJSON writes for a lease without
// pins is read in one pass without reflection (the client decoded it twice
// through encoding/json, once for the response and once in
// Lease.UnmarshalJSON: ~5 µs of a claim's client side, BENCHMARKS.md, B5);
// anything else, or anything the fast path is unsure of, goes through
// encoding/json, so the result and the errors are always its.
func (r *LeaseResponse) DecodeJSON(data []byte) error {
	if l, ok := parseLeaseResponse(data); ok {
		r.Lease = l
		return nil
	}
	return json.Unmarshal(data, r)
}

// parseLeaseResponse reads exactly the bytes LeaseResponse.AppendJSON
// writes for a lease without pins and whose holder needs no escaping,
// and the whitespace after them; ok is false for anything else.
func parseLeaseResponse(data []byte) (l Lease, ok bool) {
	p := leaseParser{data: data}
	if !p.literal(`{"lease":{"holder":`) {
		return Lease{}, false
	}
	l.Holder, ok = p.plainString()
	if !ok || !p.literal(`,"term":`) {
		return Lease{}, false
	}
	if l.Term, ok = p.uint(); !ok || !p.literal(`,"start":`) {
		return Lease{}, false
	}
	if l.Start, ok = p.time(); !ok || !p.literal(`,"duration":`) {
		return Lease{}, false
	}
	d, ok := p.plainString()
	if !ok || !p.literal(`,"expiry":`) {
		return Lease{}, false
	}
	var err error
	if l.Duration, err = ParseDuration(d, true); err != nil {
		return Lease{}, false
	}
	if l.Expiry, ok = p.time(); !ok || !p.literal(`,"pins":[],"step_down":`) {
		return Lease{}, false
	}
	l.Pins = []Pin{} // what encoding/json makes of []
	switch {
	case p.literal(`true`):
		l.StepDown = true
	case p.literal(`false`):
	default:
		return Lease{}, false
	}
	if !p.literal(`}}`) {
		return Lease{}, false
	}
	for ; p.i < len(p.data); p.i++ { // JSON's whitespace: the server ends its answers with a newline
		if c := p.data[p.i]; c != ' ' && c != '\n' && c != '\r' && c != '\t' {
			return Lease{}, false
		}
	}
	return l, true
}

// leaseParser walks the bytes of one lease answer.
type leaseParser struct {
	data []byte
	i    int
}

// literal consumes s if the input continues with it.
func (p *leaseParser) literal(s string) bool {
	if len(p.data)-p.i < len(s) || string(p.data[p.i:p.i+len(s)]) != s {
		return false
	}
	p.i += len(s)
	return true
}

// plainString consumes a JSON string of printable ASCII without escapes.
func (p *leaseParser) plainString() (string, bool) {
	b, ok := p.plainBytes()
	return string(b), ok
}

// plainBytes is plainString without the copy.
func (p *leaseParser) plainBytes() ([]byte, bool) {
	if p.i >= len(p.data) || p.data[p.i] != '"' {
		return nil, false
	}
	for j := p.i + 1; j < len(p.data); j++ {
		switch c := p.data[j]; {
		case c == '"':
			b := p.data[p.i+1 : j]
			p.i = j + 1
			return b, true
		case c < 0x20 || c > 0x7e || c == '\\':
			return nil, false
		}
	}
	return nil, false
}

// uint consumes a JSON number that is a uint64 without a sign, fraction
// or exponent ("0" or no leading zero).
func (p *leaseParser) uint() (uint64, bool) {
	j := p.i
	for j < len(p.data) && p.data[j] >= '0' && p.data[j] <= '9' {
		j++
	}
	digits := p.data[p.i:j]
	if len(digits) == 0 || (len(digits) > 1 && digits[0] == '0') {
		return 0, false
	}
	n, err := strconv.ParseUint(string(digits), 10, 64)
	if err != nil {
		return 0, false
	}
	p.i = j
	return n, true
}

// time consumes a JSON string holding a time as time.Time's UnmarshalJSON
// reads it (it calls the same strict RFC 3339 parser as UnmarshalText).
func (p *leaseParser) time() (time.Time, bool) {
	b, ok := p.plainBytes()
	if !ok {
		return time.Time{}, false
	}
	var t time.Time
	if err := t.UnmarshalText(b); err != nil {
		return time.Time{}, false
	}
	return t, true
}
