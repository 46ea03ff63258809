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
