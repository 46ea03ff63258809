// Package charm reads what the agent needs from a charm directory: the
// charm's identity and relation endpoints in metadata.yaml, its
// configuration schema in config.yaml and its actions in actions.yaml,
// and turns the controller's stored config strings into the typed values
// config-get prints. Schema is the small JSON Schema validator the
// controller checks action parameters with.
package charm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"

	"go.yaml.in/yaml/v3"
)

// Metadata is the part of a charm's metadata.yaml that uniter uses. Other
// fields (storage, resources, …) are allowed and ignored.
type Metadata struct {
	// Name is the charm's name: lower-case letters and digits in
	// hyphen-separated words, starting with a letter.
	Name string `yaml:"name"`
	// Summary is a one-line description; optional.
	Summary string `yaml:"summary"`
	// Description is a longer description; optional.
	Description string `yaml:"description"`
	// Endpoints are the relation endpoints of provides, requires and
	// peers, by name (names are unique across the three); nil if the
	// charm has none.
	Endpoints map[string]Endpoint `yaml:"-"`
}

// validName is Juju's rule for charm names.
var validName = regexp.MustCompile(`^[a-z][a-z0-9]*(-[a-z0-9]*[a-z][a-z0-9]*)*$`)

// ReadMetadata reads and checks dir/metadata.yaml. A missing file, a
// document that is not a map, fields of the wrong type and a missing or
// malformed name are errors naming the file.
func ReadMetadata(dir string) (*Metadata, error) {
	path := filepath.Join(dir, "metadata.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read charm metadata: %w", err)
	}
	m, err := parseMetadata(data)
	if err != nil {
		return nil, fmt.Errorf("cannot read charm metadata %s: %w", path, err)
	}
	return m, nil
}

func parseMetadata(data []byte) (*Metadata, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	if len(doc.Content) == 0 {
		return nil, errors.New("file is empty")
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, errors.New("top level is not a map")
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		key, val := root.Content[i].Value, root.Content[i+1]
		if isStringField(key) && (val.Kind != yaml.ScalarNode || val.Tag != "!!str") {
			return nil, fmt.Errorf("field %q is not a string (line %d)", key, val.Line)
		}
	}
	var m Metadata
	if err := root.Decode(&m); err != nil {
		return nil, err
	}
	switch {
	case m.Name == "":
		return nil, errors.New(`field "name" is missing`)
	case !validName.MatchString(m.Name):
		return nil, fmt.Errorf("invalid charm name %q", m.Name)
	}
	eps, err := parseEndpoints(root)
	if err != nil {
		return nil, err
	}
	m.Endpoints = eps
	return &m, nil
}

func isStringField(key string) bool {
	return key == "name" || key == "summary" || key == "description"
}
