package config

import (
	"time"

	"github.com/image-pin/image-pin-webhook/resolver"
)

// The defaults of the policy block, each with its reason.
const (
	// DefaultCacheTTL is how long an answer is reused: a tag moved on the
	// registry is seen within it, and a busy workload asks the registry a
	// few times an hour rather than at every admission.
	DefaultCacheTTL = 5 * time.Minute
	// DefaultResolveTimeout is the whole admission budget: 2s below the
	// webhook's 10s timeoutSeconds, so the answer arrives before the API
	// server gives up on the webhook.
	DefaultResolveTimeout = 8 * time.Second
	// DefaultMaxLookups bounds the registry lookups of one admission: a
	// pod template rarely has more than a handful of images.
	DefaultMaxLookups = 32
	// Resolution records (--state cluster): how long a use keeps a record
	// refreshed ahead (an hour of quiet and the next admission asks the
	// registry), how long an unused one is kept (a week: a weekly job still
	// finds its pin), and how many one namespace's admissions may create
	// (the API server's objects are everyone's: one tenant must not fill
	// them).
	DefaultRefreshWindow          = time.Hour
	DefaultRecordRetention        = 168 * time.Hour
	DefaultMaxRecordsPerNamespace = 1000
	// DefaultMaxRecords bounds the records of all namespaces together, so
	// that many namespaces (or reviews forged to name them) cannot grow
	// them past what every replica's informer holds: 10,000 records with a
	// full history measured 68 MiB of heap and 109 MiB resident in one
	// replica (docs/performance.md), within the chart's 256Mi memory limit
	// with room for admissions; it is ten namespaces at their full share,
	// far more images than a cluster runs.
	DefaultMaxRecords = 10000
)

// The defaults of the reload watcher.
const (
	// DefaultPollInterval is how often the file is read again without a
	// file event: a safety net for file systems that send none, such as
	// some network mounts; a ConfigMap update takes up to a minute to reach
	// the pod anyway.
	DefaultPollInterval = 30 * time.Second
	// reloadDebounce gathers the events of one update (a ConfigMap's
	// symlink swap sends several) into one reload.
	reloadDebounce = 100 * time.Millisecond
	// minReloadBackoff and maxReloadBackoff bound the wait before a file
	// that failed to load is tried again (doubling): its cause may be
	// outside the file (a ca_file whose Secret is not mounted yet), and a
	// file that stays broken is logged once per wait, not at every poll.
	minReloadBackoff = time.Second
	maxReloadBackoff = 5 * time.Minute
)

// Default fills in what the policy block leaves unset. A field given as 0
// stays 0 for Validate to judge: cache_ttl: 0 turns the cache off, while
// max_candidate_tags: 0 is refused.
func (pc *policyConf) Default() {
	if pc.Mode == "" {
		pc.Mode = string(ModePin)
	}
	if pc.OnError == "" {
		pc.OnError = string(OnErrorIgnore)
	}
	if pc.CacheTTL == nil {
		pc.CacheTTL = &duration{DefaultCacheTTL}
	}
	if pc.ResolveTimeout.Duration == 0 {
		pc.ResolveTimeout.Duration = DefaultResolveTimeout
	}
	if pc.MaxCandidateTags == nil {
		n := resolver.DefaultMaxCandidates
		pc.MaxCandidateTags = &n
	}
	if pc.MaxLookups == nil {
		n := DefaultMaxLookups
		pc.MaxLookups = &n
	}
	if pc.RefreshWindow == nil {
		pc.RefreshWindow = &duration{DefaultRefreshWindow}
	}
	if pc.RecordRetention == nil {
		pc.RecordRetention = &duration{DefaultRecordRetention}
	}
	if pc.MaxRecordsPerNS == nil {
		n := DefaultMaxRecordsPerNamespace
		pc.MaxRecordsPerNS = &n
	}
	if pc.MaxRecords == nil {
		n := DefaultMaxRecords
		pc.MaxRecords = &n
	}
}
