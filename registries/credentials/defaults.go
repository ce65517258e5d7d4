package credentials

import "time"

// The defaults of the credential cache, each with its reason.
const (
	// DefaultFailureHold is how long a failed credential fetch (a script,
	// a Secret read, a cloud login) is answered from memory before the
	// source is asked again: long enough that a tenant's lookups cannot
	// run a failing script at every request, short enough that a fixed
	// source is seen within seconds.
	DefaultFailureHold = 5 * time.Second
	// DefaultRefetchInterval is how soon a credential the registry refused
	// may be fetched again: an ext: script can cost seconds of CPU and its
	// provider's rate limit.
	DefaultRefetchInterval = 30 * time.Second
	// DefaultCredsTimeout bounds an ext: script when the entry sets no
	// credstimeout; Argo CD Image Updater hard-codes the same 10s.
	DefaultCredsTimeout = 10 * time.Second
	// secretReadBound bounds a detached fetch that is not a script (a
	// Secret read through the API server): it is cached even when the
	// admission that asked has given up, but must not hang for ever.
	secretReadBound = 30 * time.Second
	// maxHeldFailures bounds the failures held; the sources are the
	// config's, so only a config with this many failing entries reaches it.
	maxHeldFailures = 1024
)

// The defaults of ext: scripts.
const (
	// maxScriptOutput bounds what is read of a script's stdout (one
	// user:pass line; ECR's tokens are about 2 KiB) and stderr.
	maxScriptOutput = 64 << 10
	// stderrTail is how much of the end of a script's stderr is kept to
	// find its last line in.
	stderrTail = 4 << 10
	// scriptWaitDelay is how long a script's output is waited for once it
	// exited: a child it left behind may hold the pipes open.
	scriptWaitDelay = time.Second
	// scriptLogEvery is how often one script's failure, with one cause, is
	// logged at most: a failing script runs once per failure hold, and the
	// same line every few seconds tells the operator nothing new.
	scriptLogEvery = time.Minute
	// maxScriptLogKeys is the number of script and cause pairs above which
	// the log limiter forgets those it logged more than scriptLogEvery ago;
	// the scripts are the config's, so this is reached only by many exit
	// statuses.
	maxScriptLogKeys = 256
)

// The defaults of the cloud token cache.
const (
	// cloudMargin is how long before the cloud's own expiry a token stops
	// being used, so a request sent just before expiry is not refused in
	// flight. Short-lived tokens use a tenth of their life instead.
	cloudMargin = 5 * time.Minute
	// cloudRefreshAt is the part of a token's usable life after which the
	// background refresh starts, leaving the last quarter for retries.
	cloudRefreshAt = 0.75
	// cloudFetchBound bounds one login (token file, STS, token endpoint).
	cloudFetchBound = 30 * time.Second
	// cloudRetryFirst and cloudRetryMax bound the wait between failed
	// background refreshes: doubling from the first to the most.
	cloudRetryFirst = time.Second
	cloudRetryMax   = 30 * time.Second
)
