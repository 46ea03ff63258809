package raftnode

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/rs/zerolog"
)

// newRaftLogger returns an hclog.Logger for raft that writes through log:
// hclog formats each entry as one JSON line, which zerologWriter turns into
// a zerolog event at the same level with the same fields. level is an
// hclog level name ("warn" if empty); raft is chatty at info.
func newRaftLogger(log zerolog.Logger, level string) (hclog.Logger, error) {
	if level == "" {
		level = "warn"
	}
	lvl := hclog.LevelFromString(level)
	if lvl == hclog.NoLevel {
		return nil, fmt.Errorf("cannot configure raft logging: unknown level %q", level)
	}
	return hclog.New(&hclog.LoggerOptions{
		Name:        "raft",
		Level:       lvl,
		Output:      &zerologWriter{log: log},
		JSONFormat:  true,
		DisableTime: true,
	}), nil
}

// zerologWriter re-emits hclog's JSON lines as zerolog events.
type zerologWriter struct {
	log zerolog.Logger
	mu  sync.Mutex // hclog may write from many goroutines
	buf []byte
}

func (w *zerologWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.emit(w.buf[:i])
		w.buf = w.buf[i+1:]
	}
}

func (w *zerologWriter) emit(line []byte) {
	var fields map[string]any
	if err := json.Unmarshal(line, &fields); err != nil {
		w.log.Warn().Bytes("line", line).Msg("unparsable raft log line")
		return
	}
	msg, _ := fields["@message"].(string)
	lvl, _ := fields["@level"].(string)
	delete(fields, "@message")
	delete(fields, "@level")
	if m, ok := fields["@module"]; ok {
		fields["module"] = m
		delete(fields, "@module")
	}
	zl, err := zerolog.ParseLevel(lvl)
	if err != nil || lvl == "" {
		zl = zerolog.WarnLevel
	}
	w.log.WithLevel(zl).Fields(fields).Msg(msg)
}
