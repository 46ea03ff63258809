package lease

import (
	"encoding/json"
	"fmt"
	"io"
)

// SnapshotFormat is the newest snapshot format this binary reads; it
// reads every older one too. It writes the format of the state's effective
// version (snapshotFormats), so that no node of the cluster is ever sent a
// format it cannot read.
//
// Format 1 is the state of protocols 1 and 2. Format 2 (protocol 3) is
// format 1 plus the leases' hand-over fields (stepped_down,
// hand_over_until). Format 3 (protocol 4) is format 2 plus relations, the
// relation id counter and application endpoints, and operations, the
// operation id counter and application actions; a state without them
// encodes the same in all three, so a format-1 or format-2 snapshot
// restores as a state with no relations and no operations, and one that
// carries such state is refused. Format 4 (protocol 5) is format 3 plus
// the units' opened ports; a state without any encodes the same as in
// format 3, and an older format that carries them is refused.
const SnapshotFormat = 4

// snapshotFile is the on-disk form: {"format":4,"state":{...}}.
type snapshotFile struct {
	Format int             `json:"format"`
	State  json.RawMessage `json:"state"`
}

// WriteSnapshot writes s to w in the versioned snapshot format of its
// effective version. The bytes are deterministic: equal states give equal
// snapshots.
func WriteSnapshot(w io.Writer, s *State) error {
	state, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("cannot encode lease state: %w", err)
	}
	data, err := json.Marshal(snapshotFile{Format: snapshotFormatFor(s.EffectiveVersion), State: state})
	if err != nil {
		return fmt.Errorf("cannot encode lease snapshot: %w", err)
	}
	if _, err := w.Write(data); err != nil {
		return fmt.Errorf("cannot write lease snapshot: %w", err)
	}
	return nil
}

// ReadSnapshot reads a snapshot written by WriteSnapshot. A missing,
// unknown or newer format is refused with ErrSnapshotFormat; unknown
// fields, trailing data and a state that breaks the invariants (see
// Validate) are refused too.
func ReadSnapshot(r io.Reader) (*State, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("cannot read lease snapshot: %w", err)
	}
	var f snapshotFile
	if err := strictUnmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("cannot decode lease snapshot: %w", err)
	}
	if f.Format < 1 || f.Format > SnapshotFormat {
		return nil, fmt.Errorf("cannot restore lease snapshot: format %d (this binary reads formats 1 to %d): %w",
			f.Format, SnapshotFormat, ErrSnapshotFormat)
	}
	s := &State{}
	if err := strictUnmarshal(f.State, s); err != nil {
		return nil, fmt.Errorf("cannot decode lease snapshot state: %w", err)
	}
	if want := snapshotFormatFor(s.EffectiveVersion); f.Format < want {
		return nil, fmt.Errorf("cannot restore lease snapshot: format %d cannot hold the state of protocol %d (format %d): %w",
			f.Format, s.EffectiveVersion, want, ErrSnapshotFormat)
	}
	if f.Format < 3 && s.hasRelationState() {
		return nil, fmt.Errorf("cannot restore lease snapshot: format %d cannot hold relations or endpoints: %w",
			f.Format, ErrSnapshotFormat)
	}
	if f.Format < 3 && s.hasOperationState() {
		return nil, fmt.Errorf("cannot restore lease snapshot: format %d cannot hold actions or operations: %w",
			f.Format, ErrSnapshotFormat)
	}
	if f.Format < 4 && s.hasPortState() {
		return nil, fmt.Errorf("cannot restore lease snapshot: format %d cannot hold opened ports: %w",
			f.Format, ErrSnapshotFormat)
	}
	s.normalize()
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("cannot restore lease snapshot: %w", err)
	}
	return s, nil
}

// hasRelationState reports whether s holds anything of format 3.
func (s *State) hasRelationState() bool {
	if len(s.Relations) > 0 || s.NextRelationID != 0 {
		return true
	}
	for _, a := range s.Applications {
		if a != nil && a.Endpoints != nil {
			return true
		}
	}
	return false
}
