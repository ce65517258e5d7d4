package resolver

import (
	"context"
	"errors"
	"fmt"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/image-pin/image-pin-webhook/internal/ctxutil"
	"github.com/image-pin/image-pin-webhook/internal/flight"
	"github.com/image-pin/image-pin-webhook/registries/client"
)

// Result is the outcome of one resolution.
type Result struct {
	Tag    string // the tag chosen, as the registry lists it
	Digest string // sha256:…
	// Stale is set when the lookup failed and this is the last known good
	// answer; Resolve then also returns the error.
	Stale bool
	// Cached is set when the answer came from the cache without a lookup.
	Cached bool
}

// Resolver resolves images. One lives for the whole process so its caches
// survive config reloads; it is safe for concurrent use.
type Resolver struct {
	failureTTL time.Duration
	metrics    *Metrics
	store      Store // nil: memory only (--state memory)

	// Every cache and the in-flight lookups are keyed by the entry's
	// identity first: what one entry's credentials obtained (an answer, a
	// failure, a tag list) is never served through another entry.
	// Each is shared fairly by namespace (see fairCache): no namespace's
	// distinct policies or images evict another's entries.
	answers  *fairCache[key, answer]      // kept past their TTL as last known good
	tags     *fairCache[repoKey, tagList] // repository → tags, bounded in tags
	meta     *fairCache[metaKey, metadata]
	descs    *fairCache[tagKey, tagDesc] // repository:tag → descriptor, for newest-build
	failures *fairCache[key, failure]    // recent failures, so a dead registry is not hammered
	flight   flight.Group[key, answer]
	// metaFlight shares the metadata reads in flight (a manifest and a
	// config blob each) among lookups that need the same digest's.
	metaFlight flight.Group[metaKey, metadata]
	// reads bounds the bytes of manifests and configs read at once.
	reads *byteBudget
}

type answer struct {
	tag, digest string
	at          time.Time
	// past is what the key answered before, newest first, at most
	// pastAnswers: only the answers cache's entry holds it (keep), so that
	// Gave knows a moved tag's old pins. Never appended to in place.
	past []given
}

// given is one answer the resolver gave before its current one.
type given struct{ tag, digest string }

// keep stores a as k's answer for ns, keeping the one it replaces (when
// another) in a's past: the bounded memory of what this process answered.
func (r *Resolver) keep(ns string, k key, a answer) {
	r.answers.AddWith(ns, k, func(old answer, had bool) answer {
		a.past = nil
		if !had {
			return a
		}
		a.past = old.past
		if old.digest != a.digest || old.tag != a.tag {
			past := make([]given, 0, min(len(old.past)+1, pastAnswers))
			past = append(past, given{old.tag, old.digest})
			for _, g := range old.past {
				if len(past) == pastAnswers {
					break
				}
				if g != (given{a.tag, a.digest}) {
					past = append(past, g)
				}
			}
			a.past = past
		}
		return a
	})
}

// gave reports whether a, or one of the answers it replaced, is tag and digest.
func (a answer) gave(tag, digest string) bool {
	if a.digest == digest && a.tag == tag {
		return true
	}
	for _, g := range a.past {
		if g.digest == digest && g.tag == tag {
			return true
		}
	}
	return false
}

// failure is a recent failed lookup. A plain LRU with a timestamp rather
// than an expiring one: the latter runs a goroutine per cache that never stops.
type failure struct {
	err error
	at  time.Time
	// tenants, when set, are the only namespaces the failure is held for:
	// a lookup that ran out of time is held for those who waited on it
	// (their time, their rate-limit queue), never for a namespace that did
	// not, whose own lookup may well finish in time.
	tenants []string
	// budget, when set, is the time the lookup that ran out had: a caller
	// with more time than that tries again rather than fail for want of
	// another's time.
	budget time.Duration
}

// holds reports whether f is held for a caller of tenant with ctx's time.
func (f failure) holds(ctx context.Context, tenant string) bool {
	if f.tenants == nil {
		return true
	}
	if f.budget > 0 && lookupBudget(ctx) > f.budget+budgetSlack {
		return false
	}
	for _, t := range f.tenants {
		if t == tenant {
			return true
		}
	}
	return false
}

// tagDesc is what a manifest HEAD said about a tag, when.
type tagDesc struct {
	desc v1.Descriptor
	at   time.Time
}

type tagList struct {
	tags []string
	at   time.Time
}

// Option configures a Resolver.
type Option func(*options)

type options struct {
	failureTTL time.Duration
	// The caches' bounds: answers, metadata, descriptors and failures in
	// entries (claims), tags in tags (see tagListOverhead).
	answers, tags, metas, descs, failures int
	metrics                               *Metrics
	store                                 Store
}

// WithFailureTTL sets how long a failed lookup is answered from memory.
func WithFailureTTL(d time.Duration) Option { return func(o *options) { o.failureTTL = d } }

// WithMetrics sets where resolutions are recorded.
func WithMetrics(m *Metrics) Option { return func(o *options) { o.metrics = m } }

// New makes a Resolver.
func New(opts ...Option) *Resolver {
	o := options{failureTTL: defaultFailureTTL, answers: defaultAnswers, tags: maxCachedTags, metas: defaultMetadata, descs: defaultDescriptors, failures: defaultFailures}
	for _, opt := range opts {
		opt(&o)
	}
	r := &Resolver{failureTTL: o.failureTTL, metrics: o.metrics, store: o.store}
	r.answers = newFairCache[key, answer](o.answers)
	r.tags = newCostedCache[repoKey, tagList](o.tags, func(tl tagList) int { return len(tl.tags) + tagListOverhead })
	r.meta = newFairCache[metaKey, metadata](o.metas)
	r.reads = newByteBudget(maxReadBytes, maxReadBytesPerNamespace)
	r.descs = newFairCache[tagKey, tagDesc](o.descs)
	r.failures = newFairCache[key, failure](o.failures)
	return r
}

// fresh reports whether something cached at at may still be served.
func fresh(at time.Time, ttl time.Duration) bool {
	return ttl > 0 && time.Since(at) < ttl
}

// Resolve chooses the tag of q's image under q.Policy and returns it with
// its digest. It reads nothing but q.
//
// Within the cache TTL the answer comes from memory; concurrent identical
// lookups share one registry round trip. When the lookup fails and an older
// answer is known, Resolve returns it with Stale set together with the
// error: the caller decides whether to use it.
func (r *Resolver) Resolve(ctx context.Context, q Query) (Result, error) {
	start := time.Now()
	p, entry := q.Policy, q.Target.Identity.Name
	if p.Strategy == "" {
		return Result{}, fmt.Errorf("resolver: strategy %q cannot be resolved", p.Strategy)
	}
	if q.Target.Client == nil {
		return Result{}, fmt.Errorf("resolver: the query has no registry client")
	}
	k := q.key()
	old, known := r.answers.Get(client.TenantOf(ctx), k)
	old, known, prev := r.recall(ctx, q, k, old, known) // the store: another replica's answer, or a newer one
	if known && !p.Fresh && fresh(old.at, p.CacheTTL) {
		r.metrics.resolved(entry, p.Strategy, "cache_hit", start)
		return Result{Tag: old.tag, Digest: old.digest, Cached: true}, nil
	}
	if f, failed := r.failures.Get(client.TenantOf(ctx), k); failed && !p.Fresh && time.Since(f.at) < r.failureTTL && f.holds(ctx, client.TenantOf(ctx)) {
		return r.failed(entry, p.Strategy, start, old, known, f.err)
	}
	for attempt := 0; ; attempt++ {
		a, err := r.share(ctx, k, func(lctx context.Context) (answer, error) {
			if a, ok := r.answers.Peek(k); ok && !p.Fresh && fresh(a.at, p.CacheTTL) {
				// A lookup of k ended between our look at the cache and
				// this one's start: its answer is ours, without a request.
				return a, nil
			}
			a, err := r.lookup(lctx, q)
			if err == nil {
				a = r.remember(lctx, q, prev, a) // stored before any caller is answered
			}
			return a, err
		})
		var ex expired
		if errors.As(err, &ex) && attempt == 0 && ctx.Err() == nil {
			// We joined a lookup started by a caller with an earlier deadline.
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				err = fmt.Errorf("no answer from %s in time: %w", entry, err)
			}
			return r.failed(entry, p.Strategy, start, old, known, err)
		}
		if !known {
			// A joiner of another namespace's lookup claims the answer too:
			// it is its last known good from now on.
			r.answers.Get(client.TenantOf(ctx), k)
		}
		r.metrics.resolved(entry, p.Strategy, "resolved", start)
		return Result{Tag: a.tag, Digest: a.digest}, nil
	}
}

// Answerable reports whether Resolve would answer q from memory, without
// a registry request: a fresh answer, or a recent failure held for ctx's
// namespace. It claims nothing in the caches.
func (r *Resolver) Answerable(ctx context.Context, q Query) bool {
	p, k := q.Policy, q.key()
	if p.Fresh {
		return false
	}
	if old, known := r.answers.Peek(k); known && fresh(old.at, p.CacheTTL) {
		return true
	}
	f, failed := r.failures.Peek(k)
	return failed && time.Since(f.at) < r.failureTTL && f.holds(ctx, client.TenantOf(ctx))
}

// LastKnown returns the last answer known for q, fresh or not, with Stale
// set, without a registry request and without claiming it.
func (r *Resolver) LastKnown(q Query) (Result, bool) {
	a, ok := r.answers.Peek(q.key())
	if !ok {
		return Result{}, false
	}
	return Result{Tag: a.tag, Digest: a.digest, Stale: true}, true
}

// Gave reports whether the resolver answered q with tag and digest, now
// or before, as far as it can tell without a registry request: its answer
// in memory (fresh or not) or one of the last pastAnswers it replaced
// (the tag moved since), or, with a Store that keeps them (History), the
// record's answer or its history, when q's entry admits ctx's namespace
// (WithAdmission). It claims nothing. A digest none of them holds may
// still be one the process gave before it started or forgot; the caller
// looks q up to tell.
func (r *Resolver) Gave(ctx context.Context, q Query, tag, digest string) bool {
	if a, ok := r.answers.Peek(q.key()); ok && a.gave(tag, digest) {
		return true
	}
	h, ok := r.store.(History)
	return ok && h.Gave(ctx, q, admissionOf(ctx).Namespace, tag, digest)
}

// lookupContext is the context of a shared lookup started by ctx's caller:
// detached from the caller's cancellation, since other callers may join
// it, and ending a little before the caller's deadline (a tenth of the time
// left, at most lookupReserve).
func lookupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	lctx, cancel := ctxutil.Detach(ctx)
	dl, ok := ctx.Deadline()
	if !ok {
		return lctx, cancel
	}
	reserve := min(time.Until(dl)/lookupReserveShare, lookupReserve)
	short, cancelShort := context.WithDeadline(lctx, dl.Add(-reserve))
	return short, func() { cancelShort(); cancel() }
}

// lookupBudget is how long a lookup started by ctx's caller would have
// (see lookupContext); 0 without a deadline.
func lookupBudget(ctx context.Context) time.Duration {
	dl, ok := ctx.Deadline()
	if !ok {
		return 0
	}
	left := time.Until(dl)
	return left - min(left/lookupReserveShare, lookupReserve)
}

// expired marks the error of a shared lookup whose own deadline (that of
// the caller who started it) ran out.
type expired struct{ error }

func (e expired) Unwrap() error { return e.error }

// share runs lookup once for all concurrent callers of key, detached from
// the first caller's cancellation but bounded by its deadline, and records
// the answer or the failure.
//
// The lookup's registry requests are charged to its starter's namespace
// while it alone waits, and to a neutral share once another joins
// (client.Share), so a joiner never waits behind the starter's burst.
func (r *Resolver) share(ctx context.Context, k key, lookup func(context.Context) (answer, error)) (answer, error) {
	tenant := client.TenantOf(ctx)
	sh := client.NewShare(shareTenant(ctx))
	c, leader := r.flight.Start(k, sh, func() (answer, error) {
		budget := lookupBudget(ctx)
		lctx, cancel := lookupContext(ctx)
		defer cancel()
		a, err := lookup(withLookupShare(client.WithShare(lctx, sh), sh))
		if err != nil {
			if lctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
				// Ran out of time (or a rate-limit wait was refused as
				// past it): held like a failure, so the next admission
				// does not pay for it again, but only for the namespaces
				// that waited on it. A caller's deadline is not the
				// registry's fault: held for everyone, it would let one
				// namespace's burst fail another's lookups.
				r.failures.Add(tenant, k, failure{err: err, at: time.Now(), tenants: sh.Tenants(), budget: budget})
				return answer{}, expired{err}
			}
			r.failures.Add(tenant, k, failure{err: err, at: time.Now()})
			return answer{}, err
		}
		if a.at.IsZero() { // not an answer another lookup just stored
			a.at = time.Now()
		}
		r.failures.Remove(k)
		r.keep(tenant, k, a)
		r.metrics.cacheEntries("answers", r.answers.Len())
		return a, nil
	})
	if !leader {
		if s, ok := c.Data().(*client.Share); ok {
			s.Join(tenant)
		}
	}
	select {
	case <-c.Done():
		val, err := c.Result()
		var ex expired
		if leader && errors.As(err, &ex) {
			// Our own lookup ran out of our time: its error says how far
			// it got, and trying again would only run out again.
			return val, ex.error
		}
		return val, err
	case <-ctx.Done():
		return answer{}, ctx.Err()
	}
}

func (r *Resolver) failed(registry string, s Strategy, start time.Time, old answer, known bool, err error) (Result, error) {
	if known {
		r.metrics.resolved(registry, s, "stale", start)
		return Result{Tag: old.tag, Digest: old.digest, Stale: true}, err
	}
	r.metrics.resolved(registry, s, string(CauseOf(err)), start)
	return Result{}, err
}
