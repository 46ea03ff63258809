package cli

import (
	"context"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/rs/zerolog"
)

// systemdNotifier tells systemd, when it started uniter as a Type=notify
// service ($NOTIFY_SOCKET set), that the daemon is ready (READY=1) and
// that it is stopping (STOPPING=1). Without $NOTIFY_SOCKET it does
// nothing. It implements agent.Notifier.
type systemdNotifier struct{ log zerolog.Logger }

// Ready sends READY=1.
func (n systemdNotifier) Ready() { n.notify(daemon.SdNotifyReady) }

// Stopping sends STOPPING=1.
func (n systemdNotifier) Stopping() { n.notify(daemon.SdNotifyStopping) }

func (n systemdNotifier) notify(state string) {
	// The variable stays set: STOPPING=1 follows READY=1. Hooks never see
	// it (they get a fresh environment).
	if _, err := daemon.SdNotify(false, state); err != nil {
		n.log.Warn().Err(err).Str("state", state).Msg("cannot notify systemd")
	}
}

// notifyStopping sends STOPPING=1 when ctx ends. Call the returned
// function before returning: it waits for a notification under way.
func (n systemdNotifier) notifyStopping(ctx context.Context) (wait func()) {
	sent := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(sent)
		n.Stopping()
	})
	return func() {
		if !stop() {
			<-sent
		}
	}
}
