package operation

// NewStateFileForTest returns a state file with its own schema version and
// migrations, to test migration without a real older schema.
func NewStateFileForTest(path string, current int, m map[int]Migration) *StateFile {
	return &StateFile{path: path, migrations: m, current: current}
}
