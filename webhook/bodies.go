package webhook

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sync/semaphore"
)

// maxBodyBytesInFlight bounds the request bodies the admission port reads
// and holds at once. Each may be up to maxRequestBytes (7 MiB) before any
// in-flight bound on admissions applies, and a handful of forged bodies of
// that size would pass the chart's 256Mi memory limit; the API server's
// reviews are KiB, so 32 MiB is thousands of them.
const maxBodyBytesInFlight = 32 << 20

// WithBodyBudget answers at once, with 429 and a message, a request whose
// body would take the bodies in flight past maxBodyBytesInFlight. A body is
// charged its Content-Length, or maxRequestBytes when the length is not
// sent, until h returns. The API server then follows the webhook's
// failurePolicy, as for any call that fails. Each refusal is counted (a nil
// m counts nothing) and logged, at most one line per bodyLogInterval.
func WithBodyBudget(h http.Handler, m *Metrics, log logr.Logger) http.Handler {
	return withBodyBudget(h, m, log, maxBodyBytesInFlight)
}

// bodyLogInterval spaces the log lines of refused bodies: a flood of them
// is one line per interval, with the count of the others.
const bodyLogInterval = 10 * time.Second

func withBodyBudget(h http.Handler, m *Metrics, log logr.Logger, limit int64) http.Handler {
	budget := semaphore.NewWeighted(limit)
	var last atomic.Int64 // unix nanoseconds of the last line
	var suppressed atomic.Int64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := r.ContentLength
		if n < 0 || n > maxRequestBytes {
			n = maxRequestBytes // read up to the bound: charged the bound
		}
		if !budget.TryAcquire(n) {
			m.refusal(refusedBodies)
			now, prev := time.Now().UnixNano(), last.Load()
			if now-prev >= int64(bodyLogInterval) && last.CompareAndSwap(prev, now) {
				log.Info("request body refused: the bodies in flight are at their bound", "bytes", n, "boundMiB", limit>>20,
					"remote", r.RemoteAddr, "suppressed", suppressed.Swap(0))
			} else {
				suppressed.Add(1)
			}
			w.Header().Set("Retry-After", "1")
			http.Error(w, fmt.Sprintf("admission port: request bodies in flight are at their bound of %d MiB; a body of %d bytes is refused (image_pin_admissions_refused_total{reason=%q})",
				limit>>20, n, refusedBodies), http.StatusTooManyRequests)
			return
		}
		defer budget.Release(n)
		h.ServeHTTP(w, r)
	})
}
