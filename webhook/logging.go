package webhook

import (
	"context"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/hashicorp/golang-lru/v2/simplelru"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/image-pin/image-pin-webhook/config"
	"github.com/image-pin/image-pin-webhook/resolver"
)

// requestLog is the logger of one admission: controller-runtime's
// request-scoped logger when the context carries one (webhook.Admission
// puts it there, naming the request's UID, object, resource and user), else
// the handler's own with the same fields.
func (h *Handler) requestLog(ctx context.Context, req admission.Request) logr.Logger {
	l, scoped := h.baseLog(ctx)
	return withRequest(l, scoped, req)
}

// withRequest is l when it is request-scoped already, else l with the
// fields controller-runtime's request-scoped logger carries (the request's
// UID, object, resource and user), so a line reads the same through Serve
// as through webhook.Admission.
func withRequest(l logr.Logger, scoped bool, req admission.Request) logr.Logger {
	if scoped {
		return l
	}
	return admission.DefaultLogConstructor(l, &req)
}

// baseLog is the request-scoped logger from ctx (scoped), else the handler's.
func (h *Handler) baseLog(ctx context.Context) (l logr.Logger, scoped bool) {
	if l, err := logr.FromContext(ctx); err == nil {
		return l, true
	}
	return h.log, false
}

// logDecisions writes what the operator must see of one admission at the
// default level: each failure to resolve (rate-limited per image and cause)
// and, in report mode, each image that would have been pinned.
func (h *Handler) logDecisions(ctx context.Context, req admission.Request, rv *Review) {
	var log *logr.Logger // made on the first line: most admissions log nothing
	logger := func() logr.Logger {
		if log == nil {
			l := h.requestLog(ctx, req).WithValues("kind", req.Kind.Kind)
			log = &l
		}
		return *log
	}
	now := time.Now()
	for _, d := range rv.Decisions {
		switch {
		case d.Outcome == Failed:
			cause := resolver.CauseOf(d.Err)
			ok, suppressed := h.failures.allow(failureKey{image: d.Written, cause: cause}, now)
			if !ok {
				continue
			}
			kv := []any{"container", d.Container, "image", d.Written, "entry", d.Entry,
				"result", string(cause), "admitted", failureAction(d, rv.Report), "error", oneLine(d.Err.Error())}
			if suppressed > 0 {
				kv = append(kv, "suppressed", suppressed)
			}
			logger().Info("image not resolved", kv...)
		case rv.Report && d.Outcome == Pinned && d.Pin != d.Image:
			logger().Info("report mode: would pin", "container", d.Container, "image", d.Image, "pin", d.Pin)
		}
	}
}

// failureAction says what the admission did with a container whose image
// was not resolved, as render decides it.
func failureAction(d Decision, report bool) string {
	switch {
	case d.OnError == config.OnErrorFail && !report:
		return "denied"
	case d.Pin != "":
		return "pinned to the last known digest"
	default:
		return "left as written"
	}
}

type failureKey struct {
	image string
	cause resolver.Cause
}

type failureSeen struct {
	at         time.Time // when it was last logged
	suppressed int       // failures not logged since
}

// failureLimiter lets one failure per key through every interval.
type failureLimiter struct {
	every time.Duration
	mu    sync.Mutex
	seen  *simplelru.LRU[failureKey, failureSeen] // guarded by mu
}

func newFailureLimiter(every time.Duration, keys int) *failureLimiter {
	seen, _ := simplelru.NewLRU[failureKey, failureSeen](keys, nil)
	return &failureLimiter{every: every, seen: seen}
}

// allow reports whether a failure of k at now is to be logged, and how many
// were held back since the last one that was.
func (l *failureLimiter) allow(k failureKey, now time.Time) (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s, known := l.seen.Get(k)
	if known && now.Sub(s.at) < l.every {
		s.suppressed++
		l.seen.Add(k, s)
		return false, 0
	}
	l.seen.Add(k, failureSeen{at: now})
	return true, s.suppressed
}
