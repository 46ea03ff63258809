package hooktools

import "github.com/uniter-dev/uniter/hooktools/toolclient"

// NewServerAllowingUIDs is NewServer serving peers with the given uids
// instead of the server's own: it lets a test connect as another user
// and see the peer check pass, the control for the refusal test.
func NewServerAllowingUIDs(cfg ServerConfig, uids ...uint32) (*Server, error) {
	cfg.allowedUIDs = uids
	return NewServer(cfg)
}

// ToolsTable returns the names of the tools the server implements.
func ToolsTable() []string {
	names := make([]string, 0, len(tools))
	for name := range tools {
		names = append(names, name)
	}
	return names
}

// FrameHeaderSize is the size of a frame's length prefix.
const FrameHeaderSize = toolclient.FrameHeaderSize

// ProtocolVersion is the protocol version requests carry.
const ProtocolVersion = toolclient.ProtocolVersion
