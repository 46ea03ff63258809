package hooktools

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// This file is on the client path: standard library only.

// protocolVersion is the "v" of every request this package sends and
// accepts.
const protocolVersion = 1

// Default limits; see Limits.
const (
	DefaultMaxArgsBytes  = 1 << 20
	DefaultMaxStdinBytes = 16 << 20
	DefaultMaxFrameBytes = 32 << 20
)

// request is what a tool sends to the server. Arguments travel as bytes
// (base64 in JSON): argv may hold any bytes, and JSON strings would
// silently replace invalid UTF-8.
type request struct {
	Version   int      `json:"v"`
	ContextID string   `json:"context_id"`
	Tool      string   `json:"tool"`
	Args      [][]byte `json:"args"`
	Cwd       string   `json:"cwd"`
	Stdin     []byte   `json:"stdin,omitempty"`
}

// args returns the request's arguments as strings.
func (r *request) args() []string {
	out := make([]string, len(r.Args))
	for i, a := range r.Args {
		out[i] = string(a)
	}
	return out
}

// response is what the server answers.
type response struct {
	Stdout []byte `json:"stdout,omitempty"`
	Stderr []byte `json:"stderr,omitempty"`
	Code   int    `json:"code"`
}

// frameTooLargeError reports a frame whose header announces more than the
// reader accepts; the body is left unread.
type frameTooLargeError struct{ size, limit uint64 }

func (e *frameTooLargeError) Error() string {
	return fmt.Sprintf("frame of %d bytes exceeds the limit of %d bytes", e.size, e.limit)
}

// writeFrame writes v as one frame with a single Write.
func writeFrame(w io.Writer, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("cannot encode frame: %w", err)
	}
	if uint64(len(body)) > 1<<32-1 {
		return fmt.Errorf("cannot encode frame: %d bytes is too large", len(body))
	}
	buf := make([]byte, 4, 4+len(body))
	binary.BigEndian.PutUint32(buf, uint32(len(body)))
	if _, err := w.Write(append(buf, body...)); err != nil {
		return fmt.Errorf("cannot write frame: %w", err)
	}
	return nil
}

// readFrame reads one frame of at most limit bytes and decodes it into v.
// The body is read as it arrives, so a peer announcing a large frame
// costs memory only for what it really sends.
func readFrame(r io.Reader, limit int64, v any) error {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return fmt.Errorf("cannot read frame header: %w", err)
	}
	size := uint64(binary.BigEndian.Uint32(hdr[:]))
	if size > uint64(limit) {
		return &frameTooLargeError{size: size, limit: uint64(limit)}
	}
	body, err := io.ReadAll(io.LimitReader(r, int64(size)))
	if err != nil {
		return fmt.Errorf("cannot read frame: %w", err)
	}
	if uint64(len(body)) != size {
		return fmt.Errorf("cannot read frame: got %d of %d bytes: %w", len(body), size, io.ErrUnexpectedEOF)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("cannot decode frame: %w", err)
	}
	return nil
}

// errNoResponse means the server closed the connection without answering.
var errNoResponse = errors.New("hooktools: the agent closed the connection without answering")
