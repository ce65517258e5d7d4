// Package ctxutil holds context helpers for work that must outlive the
// caller that started it: a lookup or credential fetch shared by several
// callers, or an admission answered while the server shuts down.
package ctxutil

import (
	"context"
	"time"
)

// DefaultBound bounds a detached context whose parent has no deadline.
const DefaultBound = 30 * time.Second

// Detach returns a context that outlives ctx's cancellation but keeps its
// deadline (DefaultBound when it has none), for work shared by several
// callers whose result is worth keeping after the first caller has gone.
// Values (tenant, logger) carry over.
func Detach(ctx context.Context) (context.Context, context.CancelFunc) {
	d := context.WithoutCancel(ctx)
	if dl, ok := ctx.Deadline(); ok {
		return context.WithDeadline(d, dl)
	}
	return context.WithTimeout(d, DefaultBound)
}

// DetachFor returns a context that outlives both ctx's cancellation and its
// deadline, bounded by d alone, for work whose own bound is the one that
// counts: an ext: script's credstimeout, an admission's resolve_timeout.
// Values carry over.
func DetachFor(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), d)
}
