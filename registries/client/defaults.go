package client

import (
	"net/http"
	"time"
)

// The defaults of a registry client, each with its reason, as
// go-containerregistry's remote/options.go names its own.
const (
	// DefaultLimit is the requests per second allowed to one registry when
	// the entry sets no limit, as in Argo CD Image Updater.
	DefaultLimit = 20
	// maxRepoTransports bounds the authenticated transports kept per entry:
	// each holds a bearer token for one repository, and tenants can name
	// any number of repositories.
	maxRepoTransports = 1024
)

// Retries (retryTransport), after go-containerregistry's
// defaultRetryBackoff and defaultRetryStatusCodes.
const (
	// retryAttempts is the tries of one request, the first included: the
	// admission's budget (resolve_timeout, 8s) has room for two waits.
	retryAttempts = 3
	// retryBackoff is the first wait, doubled at each retry: a registry
	// that answered 503 is often back within a fraction of a second, and
	// the admission cannot wait seconds (go-containerregistry's 1s is for
	// pulls that have minutes).
	retryBackoff = 200 * time.Millisecond
	// retryJitter spreads each wait by up to this fraction of it, as
	// go-containerregistry's Jitter: 0.1, so that the replicas (and
	// lookups) that failed together do not retry in lockstep.
	retryJitter = 0.1
	// retryMaxWait is the longest wait honoured (a Retry-After beyond it
	// gives the answer back at once): longer than any admission may wait.
	retryMaxWait = 10 * time.Second
	// retryRoom is what a retry must leave of the caller's deadline for
	// the request itself.
	retryRoom = 100 * time.Millisecond
	// maxDrained is what is read of a retried answer's body so its
	// connection is reused; a longer body costs a new connection instead.
	maxDrained = 64 << 10
)

// retryable reports whether an answer with this status is retried: the
// statuses go-containerregistry's defaultRetryStatusCodes lists, which say
// the registry (or a proxy before it) may answer if asked again.
func retryable(code int) bool {
	switch code {
	case http.StatusRequestTimeout, // 408
		http.StatusTooManyRequests, // 429: distribution's rate limit, Retry-After honoured
		http.StatusInternalServerError,
		http.StatusBadGateway,
		http.StatusServiceUnavailable,
		http.StatusGatewayTimeout,
		499, // nginx: client closed the request
		522: // Cloudflare: connection to the origin timed out
		return true
	}
	return false
}

// The connection pool of one entry (baseTransport).
const (
	// dialTimeout and tlsHandshakeTimeout bound a new connection: a
	// registry that does not answer within them will not answer within the
	// admission either, and the retry gets a new connection.
	dialTimeout         = 5 * time.Second
	tlsHandshakeTimeout = 5 * time.Second
	// keepAlive is the TCP keep-alive period, as net/http's default.
	keepAlive = 30 * time.Second
	// maxIdleConns and maxIdleConnsPerHost keep enough connections for the
	// concurrent lookups of a busy entry (net/http keeps 2 per host, which
	// would make most lookups dial).
	maxIdleConns        = 100
	maxIdleConnsPerHost = 32
	// idleConnTimeout is net/http's default.
	idleConnTimeout = 90 * time.Second
	// expectContinueTimeout is net/http's default; lookups send no body.
	expectContinueTimeout = time.Second
)
