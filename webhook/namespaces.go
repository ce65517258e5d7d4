package webhook

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/image-pin/image-pin-webhook/config"
)

// NamespaceGate says whether a namespace exists and carries
// image-pin.io/enabled=true. The API server calls the webhook only for such
// namespaces (the chart's namespaceSelector); a review naming any other is
// forged, or raced a label change, and is left alone before any lookup.
//
// OptedIn answers false, nil for a namespace that does not exist or is not
// opted in, and an error when it cannot tell (its lookups rate-limited,
// ctx done, the API server failing): the admission is then left as it is
// with a warning under policy.on_error ignore, and denied under fail. An
// error with a method NamespacesUnreachable() bool that returns true says
// the gate has no view of namespaces at all (the API server never
// answered): under ignore the admission then goes on as for an opted-in
// namespace, with a warning, as a replica that cannot reach the API server
// still pins (it writes no record either).
type NamespaceGate interface {
	OptedIn(ctx context.Context, name string) (bool, error)
}

func unreachableAPI(err error) bool {
	var u interface{ NamespacesUnreachable() bool }
	return errors.As(err, &u) && u.NamespacesUnreachable()
}

// WithNamespaceGate makes every admission past the other gates prove its
// namespace opted in through g before any lookup. Without it (the CLI's
// resolve, unit tests) the request's namespace is believed.
func WithNamespaceGate(g NamespaceGate) Option { return func(h *Handler) { h.namespaces = g } }

// The default-level log of reviews the namespace gate left alone: at most
// one line every namespaceLogInterval (after a burst of namespaceLogBurst),
// each saying how many were not logged since, so a flood of forged reviews
// cannot flood the log.
const (
	namespaceLogInterval = 10 * time.Second
	namespaceLogBurst    = 5
)

// namespaceLog rate-limits the gate's log lines.
type namespaceLog struct {
	limit *rate.Limiter
	mu    sync.Mutex
	held  int // guarded by mu
}

func newNamespaceLog() *namespaceLog {
	return &namespaceLog{limit: rate.NewLimiter(rate.Every(namespaceLogInterval), namespaceLogBurst)}
}

// allow reports whether a line is to be written now, and how many were
// held back since the last one.
func (l *namespaceLog) allow() (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.limit.Allow() {
		l.held++
		return false, 0
	}
	held := l.held
	l.held = 0
	return true, held
}

// checkNamespace is the namespace gate: nil when the request's namespace
// is opted in (or no gate is set), else the Review to answer. It spends
// at most the admission's budget (resolve_timeout), and says how long it
// took, which the lookups then do not have, and the warning to add when
// the admission goes on unverified.
func (h *Handler) checkNamespace(ctx context.Context, req admission.Request) (*Review, time.Duration, string) {
	if h.namespaces == nil {
		return nil, 0, ""
	}
	start := time.Now()
	pol := h.config().Policy
	gctx, cancel := context.WithTimeout(ctx, pol.ResolveTimeout)
	defer cancel()
	ok, err := h.namespaces.OptedIn(gctx, req.Namespace)
	took := time.Since(start)
	ns := limitName(req.Namespace)
	switch {
	case err != nil:
		h.metrics.gate(gatedUnverified)
		msg := fmt.Sprintf("cannot tell whether namespace %q is opted in (%s=true): %v", ns, EnabledLabel, err)
		h.logNamespace(ctx, req, "namespace not verified: no lookup", ns, oneLine(err.Error()))
		if pol.OnError == config.OnErrorFail && pol.Mode != config.ModeReport {
			return &Review{Refused: fmt.Errorf("%s; denied (policy.on_error: fail)", msg)}, took, ""
		}
		if unreachableAPI(err) {
			return nil, took, msg + "; resolved as in an opted-in namespace"
		}
		return &Review{Warnings: []string{msg + "; left as it is"}}, took, ""
	case !ok:
		h.metrics.gate(gatedNotOptedIn)
		h.logNamespace(ctx, req, "review for a namespace that is not opted in: left alone (forged, or raced a label change)", ns, "")
		return &Review{Reason: fmt.Sprintf("namespace %q does not exist or is not opted in (%s=true)", ns, EnabledLabel)}, took, ""
	}
	return nil, took, ""
}

func (h *Handler) logNamespace(ctx context.Context, req admission.Request, msg, ns, cause string) {
	ok, held := h.nsLog.allow()
	if !ok {
		return
	}
	kv := []any{"reviewNamespace", ns, "kind", limitName(req.Kind.Kind), "user", limitName(req.UserInfo.Username)}
	if cause != "" {
		kv = append(kv, "error", cause)
	}
	if held > 0 {
		kv = append(kv, "suppressed", held)
	}
	l, _ := h.baseLog(ctx)
	l.Info(msg, kv...)
}

// limitName cuts a name a forged review brings to what a Kubernetes name
// may be (253 bytes), for messages and logs.
func limitName(s string) string {
	const most = 253
	if len(s) > most {
		return s[:most] + "…"
	}
	return s
}
