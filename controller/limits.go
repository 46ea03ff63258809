package controller

import (
	"fmt"
	"net/http"

	"github.com/uniter-dev/uniter/controller/api"
)

// The limits on what one unit or application may keep in the replicated
// state. Every node holds every byte of it in memory and in each snapshot,
// `uniter status` prints it, and blocking queries ship it to agents, so a
// unit must not be able to make it grow without bound. They are checked at
// the API, before a command is proposed: a command already in the log is
// never judged again (a new limit cannot make replicas disagree over old
// entries). docs/controller.md ("Limits") gives the reasons for each value.
const (
	// MaxStatusMessage bounds a unit's or an application's status message.
	// Juju shows it on one line of `juju status`; charms write a sentence.
	MaxStatusMessage = 1024
	// MaxVersionString bounds an application version (application-version-set).
	MaxVersionString = 256
	// MaxKeyBytes bounds a config option or leader-settings key.
	MaxKeyBytes = 256
	// MaxValueBytes bounds one config or leader-settings value: room for a
	// certificate chain or a small file, base64-encoded.
	MaxValueBytes = 64 << 10
	// MaxSettingsBytes bounds an application's leader settings (keys and
	// values, summed) after a change, and likewise its config.
	MaxSettingsBytes = 256 << 10
	// MaxSettingsKeys bounds the number of leader-settings keys.
	MaxSettingsKeys = 256
)

// limitError is the 413 answer to a request that would take the state past
// a limit. Its message names the limit and the value it met.
func limitError(what string, got, limit int) error {
	return &httpError{status: http.StatusRequestEntityTooLarge, code: api.CodeLimitExceeded,
		msg: fmt.Sprintf("%s is %d bytes; the limit is %d", what, got, limit)}
}

// checkMessage refuses a status message over MaxStatusMessage.
func checkMessage(msg string) error {
	if len(msg) > MaxStatusMessage {
		return limitError("status message", len(msg), MaxStatusMessage)
	}
	return nil
}

// checkSettings refuses a change to a key/value map (config or leader
// settings) whose keys or values are too long, or that would leave the map
// over MaxSettingsBytes or, when maxKeys > 0, over maxKeys keys. An empty
// value deletes its key.
func checkSettings(what string, current, changes map[string]string, maxKeys int) error {
	for k, v := range changes {
		if k == "" {
			return badRequest("empty key in changes")
		}
		if len(k) > MaxKeyBytes {
			return limitError(fmt.Sprintf("%s key %.32q...", what, k), len(k), MaxKeyBytes)
		}
		if len(v) > MaxValueBytes {
			return limitError(fmt.Sprintf("%s value of %q", what, k), len(v), MaxValueBytes)
		}
	}
	size, keys := 0, 0
	for k, v := range current {
		if _, changed := changes[k]; !changed {
			size, keys = size+len(k)+len(v), keys+1
		}
	}
	for k, v := range changes {
		if v != "" {
			size, keys = size+len(k)+len(v), keys+1
		}
	}
	if size > MaxSettingsBytes {
		return limitError(what+" after this change", size, MaxSettingsBytes)
	}
	if maxKeys > 0 && keys > maxKeys {
		return &httpError{status: http.StatusRequestEntityTooLarge, code: api.CodeLimitExceeded,
			msg: fmt.Sprintf("%s after this change has %d keys; the limit is %d", what, keys, maxKeys)}
	}
	return nil
}
