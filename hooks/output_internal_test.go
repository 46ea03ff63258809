package hooks

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

type piece struct {
	Line      string
	Truncated bool
}

// collect writes each chunk to a fresh lineWriter, flushes it and returns
// what it emitted.
func collect(chunks ...string) ([]piece, *lineWriter) {
	var got []piece
	w := &lineWriter{emit: func(line []byte, truncated bool) {
		got = append(got, piece{string(line), truncated})
	}}
	for _, c := range chunks {
		if n, err := w.Write([]byte(c)); n != len(c) || err != nil {
			panic("short write")
		}
	}
	w.Flush()
	return got, w
}

func TestLineWriter(t *testing.T) {
	x := func(n int) string { return strings.Repeat("x", n) }
	tests := []struct {
		name   string
		chunks []string
		want   []piece
	}{
		{"lines", []string{"a\nb\n"}, []piece{{"a", false}, {"b", false}}},
		{"byte by byte", strings.Split("ab\ncd", ""), []piece{{"ab", false}, {"cd", false}}},
		{"crlf and empty lines dropped", []string{"a\r\n\n\r\nb"}, []piece{{"a", false}, {"b", false}}},
		{"exactly the cap", []string{x(MaxLineBytes) + "\n"}, []piece{{x(MaxLineBytes), false}}},
		{"one over the cap", []string{x(MaxLineBytes+1) + "\n"}, []piece{{x(MaxLineBytes), true}, {"x", false}}},
		{"over the cap across writes", []string{x(MaxLineBytes - 1), "yy", "z\nw"},
			[]piece{{x(MaxLineBytes-1) + "y", true}, {"yz", false}, {"w", false}}},
		{"cut on a rune boundary", []string{x(MaxLineBytes-1) + "é\n"}, []piece{{x(MaxLineBytes - 1), true}, {"é", false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := collect(tt.chunks...)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("emitted (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLineWriterMemoryIsBounded(t *testing.T) {
	got, w := collect(string(bytes.Repeat([]byte("x"), 8<<20)))
	if c := cap(w.buf); c > 3*MaxLineBytes {
		t.Errorf("buffer grew to %d bytes for one 8 MiB write", c)
	}
	if len(got) != (8<<20)/MaxLineBytes {
		t.Errorf("emitted %d pieces, want %d", len(got), (8<<20)/MaxLineBytes)
	}
}
