package agent

import "context"

// enterScope carries out an EnterScope decision; a failure is logged and
// tried again at the next change.
func (l *loop) enterScope(ctx context.Context, relation int) {
	if l.cfg.EnterScope == nil {
		return
	}
	l.log.Info().Int("relation", relation).Msg("entering relation scope")
	if err := l.cfg.EnterScope(ctx, relation); err != nil {
		l.log.Warn().Err(err).Int("relation", relation).Msg("cannot enter relation scope")
	}
}
