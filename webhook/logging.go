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

// Bounds of the failure log. A tenant that admits the same failing image
// again and again, or a registry that is down for every image, gets one line
// per image and cause a minute; the limiter remembers at most
// failureLogKeys of them, so a flood of distinct images costs bounded
// memory (past it, the least recently failed are forgotten and may log
// again within the minute).
const (
	failureLogInterval = time.Minute
	failureLogKeys     = 4096
)

// requestLog is the logger of one admission: controller-runtime's
// request-scoped logger when the context carries one (webhook.Admission
// puts it there, naming the request's UID, object, resource and user), else
// the handler's own with the request's UID and object.
func (h *Handler) requestLog(ctx context.Context, req admission.Request) logr.Logger {
	l, scoped := h.baseLog(ctx)
	if scoped {
		return l
	}
	return l.WithValues("requestID", req.UID, "namespace", req.Namespace, "name", req.Name)
}

// baseLog is the request-scoped logger from ctx (scoped), else the handler's.
func (h *Handler) baseLog(ctx context.Context) (l logr.Logger, scoped bool) {
	if l, err := logr.FromContext(ctx); err == nil {
		return l, true
	}
	return h.log, false
}

// logTasks writes what the operator must see of one admission at the
// default level: each failure to resolve (rate-limited per image and cause)
// and, in report mode, each image that would have been pinned.
func (h *Handler) logTasks(ctx context.Context, p *plan) {
	var log *logr.Logger // made on the first line: most admissions log nothing
	logger := func() logr.Logger {
		if log == nil {
			l := h.requestLog(ctx, p.req).WithValues("kind", p.req.Kind.Kind)
			log = &l
		}
		return *log
	}
	report := p.cfg.Policy.Mode == config.ModeReport
	now := time.Now()
	for _, t := range p.tasks {
		switch {
		case t.err != nil:
			cause := resolver.CauseOf(t.err)
			ok, suppressed := h.failures.allow(failureKey{image: t.original, cause: cause}, now)
			if !ok {
				continue
			}
			kv := []any{"container", t.c.name, "image", t.original, "entry", t.query.Target.Identity.Name,
				"result", string(cause), "admitted", p.failureAction(t), "error", oneLine(t.err.Error())}
			if suppressed > 0 {
				kv = append(kv, "suppressed", suppressed)
			}
			logger().Info("image not resolved", kv...)
		case report && t.out != "" && t.out != t.c.image:
			logger().Info("report mode: would pin", "container", t.c.name, "image", t.c.image, "pin", t.out)
		}
	}
}

// failureAction says what the admission did with a container whose image
// was not resolved, as respond decides it.
func (p *plan) failureAction(t *task) string {
	switch {
	case t.query.OnError == config.OnErrorFail && p.cfg.Policy.Mode != config.ModeReport:
		return "denied"
	case t.out != "":
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
