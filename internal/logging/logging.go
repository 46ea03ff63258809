// Package logging builds the zerolog loggers of uniter's processes: JSON
// lines into a size-rotated file, and a readable console on a terminal.
package logging

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
)

// RotatingFile is an io.Writer appending to a file that is rotated to
// path.1 … path.N once it grows past MaxBytes. Writes are serialised.
type RotatingFile struct {
	path     string
	maxBytes int64
	keep     int

	mu   sync.Mutex
	f    *os.File
	size int64
}

// OpenRotating opens (creating with mode 0600) the log file at path.
func OpenRotating(path string, maxBytes int64, keep int) (*RotatingFile, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("cannot open log file: %w", err)
	}
	r := &RotatingFile{path: path, maxBytes: maxBytes, keep: keep}
	if err := r.open(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *RotatingFile) open() error {
	f, err := os.OpenFile(r.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("cannot open log file: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("cannot open log file: %w", err)
	}
	r.f, r.size = f, fi.Size()
	return nil
}

// Write appends p, rotating first if p would take the file past MaxBytes.
func (r *RotatingFile) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return 0, os.ErrClosed
	}
	if r.size > 0 && r.size+int64(len(p)) > r.maxBytes {
		if err := r.rotate(); err != nil {
			return 0, err
		}
	}
	n, err := r.f.Write(p)
	r.size += int64(n)
	return n, err
}

func (r *RotatingFile) rotate() error {
	r.f.Close()
	r.f = nil
	for i := r.keep - 1; i >= 1; i-- {
		os.Rename(fmt.Sprintf("%s.%d", r.path, i), fmt.Sprintf("%s.%d", r.path, i+1))
	}
	if err := os.Rename(r.path, r.path+".1"); err != nil {
		return fmt.Errorf("cannot rotate log file: %w", err)
	}
	return r.open()
}

// Close closes the file.
func (r *RotatingFile) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}

// Options configure New.
type Options struct {
	// File receives JSON lines; nil for none.
	File io.Writer
	// Console receives human-readable lines when it is a terminal, JSON
	// otherwise; nil for none.
	Console *os.File
	Level   zerolog.Level
}

// New returns a logger writing to the outputs in opts, with timestamps.
func New(opts Options) zerolog.Logger {
	var ws []io.Writer
	if opts.File != nil {
		ws = append(ws, opts.File)
	}
	if opts.Console != nil {
		ws = append(ws, consoleWriter(opts.Console))
	}
	return zerolog.New(zerolog.MultiLevelWriter(ws...)).Level(opts.Level).With().Timestamp().Logger()
}

func consoleWriter(f *os.File) io.Writer {
	if !isatty.IsTerminal(f.Fd()) {
		return f
	}
	return zerolog.ConsoleWriter{Out: f, TimeFormat: time.TimeOnly}
}

func init() {
	zerolog.TimeFieldFormat = time.RFC3339Nano
	zerolog.DurationFieldUnit = time.Millisecond
	zerolog.DurationFieldInteger = false
}
