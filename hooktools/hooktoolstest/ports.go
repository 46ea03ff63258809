package hooktoolstest

import (
	"context"
	"slices"
	"sync"

	"github.com/uniter-dev/uniter/hooktools"
)

// Ports is a hooktools.PortsBackend holding a unit's committed port
// ranges; safe for concurrent use.
type Ports struct {
	mu    sync.Mutex
	ports []hooktools.PortRange
	err   error
	reads int
}

// NewPorts returns a backend with ports committed.
func NewPorts(ports ...hooktools.PortRange) *Ports {
	return &Ports{ports: slices.Clone(ports)}
}

// FailWith makes every read fail with err (nil: succeed again).
func (p *Ports) FailWith(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.err = err
}

// Reads counts the OpenedPorts calls.
func (p *Ports) Reads() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reads
}

// OpenedPorts implements hooktools.PortsBackend.
func (p *Ports) OpenedPorts(context.Context) ([]hooktools.PortRange, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reads++
	if p.err != nil {
		return nil, p.err
	}
	return slices.Clone(p.ports), nil
}
