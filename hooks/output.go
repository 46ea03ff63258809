package hooks

import (
	"bytes"
	"unicode/utf8"

	"github.com/rs/zerolog"
)

// MaxLineBytes caps one logged line of hook output. A longer line is logged
// in pieces of at most this size; every piece but the last carries
// truncated=true, so a hook printing megabytes without a newline costs
// bounded memory and still loses nothing.
const MaxLineBytes = 64 << 10

// outputMessage is the message of every logged line of hook output.
const outputMessage = "hook output"

// lineWriter is an io.Writer that hands each complete line written to it to
// emit, without the line ending. Empty lines are dropped. It is not safe
// for concurrent use; os/exec gives each stream its own copying goroutine.
type lineWriter struct {
	emit func(line []byte, truncated bool)
	buf  []byte // the current partial line; never longer than MaxLineBytes after Write
}

// newLogWriter returns a lineWriter logging each line of stream at level.
func newLogWriter(log zerolog.Logger, stream string, level zerolog.Level) *lineWriter {
	return &lineWriter{emit: func(line []byte, truncated bool) {
		ev := log.WithLevel(level).Str("stream", stream).Bytes("line", line)
		if truncated {
			ev = ev.Bool("truncated", true)
		}
		ev.Msg(outputMessage)
	}}
}

// Write splits p into lines; it never fails. It takes p in pieces of at
// most MaxLineBytes so that the buffer stays bounded whatever the caller's
// chunk size.
func (w *lineWriter) Write(p []byte) (int, error) {
	for rest := p; len(rest) > 0; {
		n := min(len(rest), MaxLineBytes)
		w.write(rest[:n])
		rest = rest[n:]
	}
	return len(p), nil
}

func (w *lineWriter) write(p []byte) {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.buf = append(w.buf, p...)
			w.emitLong()
			break
		}
		w.buf = append(w.buf, p[:i]...)
		w.emitLong()
		w.Flush()
		p = p[i+1:]
	}
}

// Flush emits the partial line, if any: call it once output has ended.
func (w *lineWriter) Flush() {
	line := bytes.TrimSuffix(w.buf, []byte{'\r'})
	if len(line) > 0 {
		w.emit(line, false)
	}
	w.buf = w.buf[:0]
}

// emitLong emits leading pieces of an overlong partial line until what is
// left fits, cutting on a UTF-8 boundary where possible.
func (w *lineWriter) emitLong() {
	for len(w.buf) > MaxLineBytes {
		cut := MaxLineBytes
		for i := cut; i > MaxLineBytes-utf8.UTFMax; i-- {
			if utf8.RuneStart(w.buf[i]) {
				cut = i
				break
			}
		}
		w.emit(w.buf[:cut], true)
		w.buf = w.buf[:copy(w.buf, w.buf[cut:])]
	}
}
