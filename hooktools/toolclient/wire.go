package toolclient

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// ProtocolVersion is the "v" of every request the client sends and the
// server accepts.
const ProtocolVersion = 1

// Default limits of a call; the server's Limits start from these.
const (
	DefaultMaxArgsBytes  = 1 << 20
	DefaultMaxStdinBytes = 16 << 20
	DefaultMaxFrameBytes = 32 << 20
)

// FrameHeaderSize is the size of a frame's length prefix: a frame is a
// 4-byte big-endian length N followed by N bytes of JSON.
const FrameHeaderSize = 4

// Request is what a tool sends to the server. Arguments travel as bytes
// (base64 in JSON): argv may hold any bytes, and JSON strings would
// silently replace invalid UTF-8.
type Request struct {
	Version   int      `json:"v"`
	ContextID string   `json:"context_id"`
	Tool      string   `json:"tool"`
	Args      [][]byte `json:"args"`
	Cwd       string   `json:"cwd"`
	Stdin     []byte   `json:"stdin,omitempty"`
}

// Response is what the server answers.
type Response struct {
	Stdout []byte `json:"stdout,omitempty"`
	Stderr []byte `json:"stderr,omitempty"`
	Code   int    `json:"code"`
}

// FrameTooLargeError reports a frame whose header announces more than the
// reader accepts; the body is left unread.
type FrameTooLargeError struct {
	Size  uint64 // announced by the header
	Limit uint64 // what the reader accepts
}

// Error says how large the frame was and what the limit is.
func (e *FrameTooLargeError) Error() string {
	return fmt.Sprintf("frame of %d bytes exceeds the limit of %d bytes", e.Size, e.Limit)
}

// WriteFrame writes v as one frame with a single Write.
func WriteFrame(w io.Writer, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("cannot encode frame: %w", err)
	}
	if uint64(len(body)) > 1<<32-1 {
		return fmt.Errorf("cannot encode frame: %d bytes is too large", len(body))
	}
	buf := make([]byte, FrameHeaderSize, FrameHeaderSize+len(body))
	binary.BigEndian.PutUint32(buf, uint32(len(body)))
	if _, err := w.Write(append(buf, body...)); err != nil {
		return fmt.Errorf("cannot write frame: %w", err)
	}
	return nil
}

// ReadFrame reads one frame of at most limit bytes and decodes it into v;
// a larger frame is a *[FrameTooLargeError]. The body is read as it
// arrives, so a peer announcing a large frame costs memory only for what
// it really sends.
func ReadFrame(r io.Reader, limit int64, v any) error {
	var hdr [FrameHeaderSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return fmt.Errorf("cannot read frame header: %w", err)
	}
	size := uint64(binary.BigEndian.Uint32(hdr[:]))
	if size > uint64(limit) {
		return &FrameTooLargeError{Size: size, Limit: uint64(limit)}
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

// ErrNoResponse means the server closed the connection without answering.
var ErrNoResponse = errors.New("hooktools: the agent closed the connection without answering")
