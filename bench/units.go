package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"sync"

	"github.com/uniter-dev/uniter/controller/client"
)

// loadUnit is a unit registered for a load generator: unit 0 of its own
// application, with its own token.
type loadUnit struct {
	app, unit, token string
}

// registerUnits registers n units "<prefix>-a<i>/0" through the admin
// client, with workers registrations in flight.
func registerUnits(ctx context.Context, admin *client.Client, prefix string, n, workers int) ([]loadUnit, error) {
	units := make([]loadUnit, n)
	for i := range units {
		app := fmt.Sprintf("%s-a%d", prefix, i)
		units[i] = loadUnit{app: app, unit: app + "/0", token: newToken()}
	}
	next := make(chan int)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := admin.RegisterUnit(ctx, units[i].unit, units[i].token, nil); err != nil {
					errs <- fmt.Errorf("cannot register unit %s: %w", units[i].unit, err)
					return
				}
			}
		}()
	}
	var err error
feed:
	for i := range units {
		select {
		case next <- i:
		case err = <-errs:
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err != nil {
		return nil, err
	}
	select {
	case err := <-errs:
		return nil, err
	default:
	}
	return units, nil
}

// newToken is a fresh unit token (crypto/rand never fails).
func newToken() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// rotate returns addrs starting at index i mod len(addrs), so clients
// spread their first choice over every node, as agents configured with
// every address in different orders would.
func rotate(addrs []string, i int) []string {
	k := i % len(addrs)
	return append(append([]string(nil), addrs[k:]...), addrs[:k]...)
}

// unitClients makes one typed client per unit, with its token, trusting
// the CA that f pins, sharing hc (nil: each its own transport; else hc
// must trust the CA).
func unitClients(f client.File, units []loadUnit, addrs []string, hc *http.Client) ([]*client.Client, error) {
	out := make([]*client.Client, len(units))
	for i, u := range units {
		cfg := f.Config()
		cfg.Addresses, cfg.Token, cfg.HTTPClient = rotate(addrs, i), u.token, hc
		c, err := client.New(cfg)
		if err != nil {
			return nil, err
		}
		out[i] = c
	}
	return out, nil
}
