package registries

import "time"

// The defaults of the background pinger, each with its reason.
const (
	// DefaultPingInterval is how often entries with ping: yes are pinged
	// when Pinger.Interval is unset: often enough to keep tokens and
	// credentials warm (ECR's last 12h, a bearer token minutes) and to show
	// a registry down within minutes, rarely enough to cost nothing.
	DefaultPingInterval = 5 * time.Minute
	// pingTimeout bounds one ping: a registry slower than this to answer
	// GET /v2/ would fail admissions anyway (resolve_timeout is 8s), and a
	// stuck one must not hold up the pings of the others.
	pingTimeout = 15 * time.Second
)
