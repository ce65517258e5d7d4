package webhook

import "time"

// The handler's defaults, each with its reason. DefaultMaxInFlight
// (inflight.go) and the admission port's deadlines (server.go) are exported
// beside the code they bound, as cmd/webhook passes them on.
const (
	// systemNamespace is never mutated, opted in or not: the control
	// plane's Pods must start when the webhook or a registry is down.
	systemNamespace = "kube-system"

	// defaultParsedImages is how many distinct references the handler
	// keeps parsed: parsing one costs more than the rest of a warm
	// admission, and 4096 covers the images of a large cluster several
	// times over at ~200 bytes each.
	defaultParsedImages = 4096

	// failureLogInterval and failureLogKeys bound the failure log. A
	// tenant that admits the same failing image again and again, or a
	// registry that is down for every image, gets one line per image and
	// cause a minute; the limiter remembers at most failureLogKeys of
	// them, so a flood of distinct images costs bounded memory (past it,
	// the least recently failed are forgotten and may log again within
	// the minute).
	failureLogInterval = time.Minute
	failureLogKeys     = 4096

	// maxWarnings is how many warnings one response carries: kubectl
	// prints each on its own line, and past a screenful nobody reads them.
	maxWarnings = 20
	// maxMessageLength bounds one warning, and one reason of a denial: the
	// API server truncates longer warnings.
	maxMessageLength = 500
	// maxDenials and maxDenialMessage bound a denial: the API server keeps
	// the message in events and audit logs, and a tenant must not make it
	// arbitrarily large.
	maxDenials       = 10
	maxDenialMessage = 4096 // bytes in all
)
