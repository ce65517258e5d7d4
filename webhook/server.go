package webhook

import (
	"net/http"
	"time"
)

// Deadlines of one admission request on the admission port. The API server
// gives up after the webhook's timeoutSeconds (at most 30s); a client that
// sends or reads slower than that only holds a connection.
const (
	DefaultReadTimeout  = 15 * time.Second
	DefaultWriteTimeout = 30 * time.Second
	// maxRequestBytes bounds an AdmissionReview, as the API server bounds
	// objects (3 MiB in etcd) with room for the old object of an UPDATE.
	maxRequestBytes = 7 << 20
)

// WithDeadlines sets read and write deadlines on the connection of every
// request h serves, and bounds its body: controller-runtime's server sets
// only a header timeout.
func WithDeadlines(h http.Handler, read, write time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		now := time.Now()
		_ = rc.SetReadDeadline(now.Add(read))
		_ = rc.SetWriteDeadline(now.Add(write))
		r.Body = http.MaxBytesReader(w, r.Body, maxRequestBytes)
		h.ServeHTTP(w, r)
	})
}
