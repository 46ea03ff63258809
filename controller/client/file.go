package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"go.yaml.in/yaml/v3"

	"github.com/uniter-dev/uniter/internal/osutil"
)

// FileVersion is the client.yaml schema this binary writes.
const FileVersion = 1

// File is a client.yaml: where the controller is, the CA it trusts and
// the token to use. It holds a secret, so it is written with mode 0600:
//
//	version: 1
//	controller:
//	  addresses:
//	    - 127.0.0.1:17070
//	  ca-cert: |
//	    -----BEGIN CERTIFICATE-----
//	    ...
//	  ca-fingerprint: sha256:5d41402abc4b2a76b9719d911017c592...
//	token: 9f86d081884c7d659a2feaa0c55ad015...
//
// ca-cert, ca-fingerprint or both pin the controller's cluster CA (see
// Config); a file with neither is read, but New refuses its Config.
type File struct {
	Version    int            `yaml:"version"`
	Controller FileController `yaml:"controller"`
	Token      string         `yaml:"token"`
}

// FileController lists the controller's API addresses and pins its CA.
type FileController struct {
	Addresses     []string `yaml:"addresses"`
	CACert        string   `yaml:"ca-cert,omitempty"`
	CAFingerprint string   `yaml:"ca-fingerprint,omitempty"`
}

// Config returns the client configuration the file describes.
func (f File) Config() Config {
	return Config{Addresses: append([]string(nil), f.Controller.Addresses...), Token: f.Token,
		CACert: caBytes(f.Controller.CACert), CAFingerprint: f.Controller.CAFingerprint}
}

func caBytes(pem string) []byte {
	if pem == "" {
		return nil
	}
	return []byte(pem)
}

func (f File) check() error {
	switch {
	case f.Version > FileVersion:
		return fmt.Errorf("version %d is newer than this uniter understands (%d)", f.Version, FileVersion)
	case f.Version < 1:
		return errors.New("missing version")
	case len(f.Controller.Addresses) == 0:
		return errors.New("no controller addresses")
	case f.Token == "":
		return errors.New("no token")
	}
	return nil
}

// ReadFile reads a client.yaml strictly: unknown fields, a missing token
// or address and a future version are errors naming the file.
func ReadFile(path string) (File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return File{}, fmt.Errorf("cannot read client config: %w", err)
	}
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return File{}, fmt.Errorf("cannot read client config %s: %w", path, err)
	}
	if err := f.check(); err != nil {
		return File{}, fmt.Errorf("cannot read client config %s: %w", path, err)
	}
	return f, nil
}

// WriteFile writes f to path atomically with mode 0600 (creating the
// directory 0700 if needed).
func WriteFile(path string, f File) error {
	f.Version = FileVersion
	if err := f.check(); err != nil {
		return fmt.Errorf("cannot write client config: %w", err)
	}
	data, err := yaml.Marshal(f)
	if err != nil {
		return fmt.Errorf("cannot write client config: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("cannot write client config: %w", err)
	}
	if err := osutil.WriteFileAtomic(path, data, 0o600); err != nil {
		return fmt.Errorf("cannot write client config: %w", err)
	}
	return nil
}

// MemberAddresses returns the API addresses of the controller's members,
// sorted, as the cluster records them: what an agent's agent.yaml and a
// client.yaml should list.
func (c *Client) MemberAddresses(ctx context.Context) ([]string, error) {
	nodes, err := c.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range nodes {
		if n.Address != "" && !slices.Contains(out, n.Address) {
			out = append(out, n.Address)
		}
	}
	slices.Sort(out)
	return out, nil
}

// SameAddresses reports whether a and b hold the same addresses, in any
// order.
func SameAddresses(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}
