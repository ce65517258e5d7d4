package resolver

import (
	"context"
	"errors"
	"fmt"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"

	"github.com/image-pin/image-pin-webhook/registries"
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

	answers  *lru.Cache[string, answer]   // kept past their TTL as last known good
	tags     *lru.Cache[string, tagList]  // repository → tags
	meta     *lru.Cache[string, metadata] // digest → immutable metadata
	descs    *lru.Cache[string, tagDesc]  // repository:tag → descriptor, for newest-build
	failures *lru.Cache[string, failure]  // recent failures, so a dead registry is not hammered
	flight   singleflight.Group
}

type answer struct {
	tag, digest string
	at          time.Time
}

// failure is a recent failed lookup. A plain LRU with a timestamp rather
// than an expiring one: the latter runs a goroutine per cache that never stops.
type failure struct {
	err error
	at  time.Time
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
	failureTTL           time.Duration
	answers, tags, metas int
	metrics              *Metrics
}

// WithFailureTTL sets how long a failed lookup is answered from memory.
func WithFailureTTL(d time.Duration) Option { return func(o *options) { o.failureTTL = d } }

// WithMetrics sets where resolutions are recorded.
func WithMetrics(m *Metrics) Option { return func(o *options) { o.metrics = m } }

// New makes a Resolver.
func New(opts ...Option) *Resolver {
	o := options{failureTTL: 3 * time.Second, answers: 20000, tags: 2000, metas: 20000}
	for _, opt := range opts {
		opt(&o)
	}
	r := &Resolver{failureTTL: o.failureTTL, metrics: o.metrics}
	r.answers, _ = lru.New[string, answer](o.answers)
	r.tags, _ = lru.New[string, tagList](o.tags)
	r.meta, _ = lru.New[string, metadata](o.metas)
	r.descs, _ = lru.New[string, tagDesc](o.answers)
	r.failures, _ = lru.New[string, failure](o.answers)
	return r
}

// fresh reports whether something cached at at may still be served.
func fresh(at time.Time, ttl time.Duration) bool {
	return ttl > 0 && time.Since(at) < ttl
}

// Resolve chooses the tag of the image in repository t (written with tag,
// "latest" when none) under p and returns it with its digest.
//
// Within the cache TTL the answer comes from memory; concurrent identical
// lookups share one registry round trip. When the lookup fails and an older
// answer is known, Resolve returns it with Stale set together with the
// error: the caller decides whether to use it.
func (r *Resolver) Resolve(ctx context.Context, t registries.Target, tag string, p Policy) (Result, error) {
	start := time.Now()
	e := t.Client.Entry
	p.Platforms, p.TagSortMode = e.Platforms, e.TagSortMode
	if p.Strategy == Skip || p.Strategy == "" {
		return Result{}, fmt.Errorf("resolver: strategy %q cannot be resolved", p.Strategy)
	}
	if tag == "" {
		tag = "latest"
	}
	key := e.Host() + "/" + t.Repository + "|" + p.key()
	if p.Strategy == Digest {
		key += "|" + tag
	}
	old, known := r.answers.Get(key)
	if known && !p.Fresh && fresh(old.at, p.CacheTTL) {
		r.metrics.resolved(e.Name, p.Strategy, "cache_hit", start)
		return Result{Tag: old.tag, Digest: old.digest, Cached: true}, nil
	}
	if f, failed := r.failures.Get(key); failed && !p.Fresh && time.Since(f.at) < r.failureTTL {
		return r.failed(e.Name, p.Strategy, start, old, known, f.err)
	}
	for attempt := 0; ; attempt++ {
		a, err := r.share(ctx, key, func(lctx context.Context) (answer, error) { return r.lookup(lctx, t, tag, p) })
		var ex expired
		if errors.As(err, &ex) && attempt == 0 && ctx.Err() == nil {
			// We joined a lookup started by a caller with an earlier deadline.
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				err = fmt.Errorf("no answer from %s in time: %w", e.Name, err)
			}
			return r.failed(e.Name, p.Strategy, start, old, known, err)
		}
		r.metrics.resolved(e.Name, p.Strategy, "resolved", start)
		return Result{Tag: a.tag, Digest: a.digest}, nil
	}
}

// expired marks the error of a shared lookup whose own deadline (that of
// the caller who started it) ran out.
type expired struct{ error }

func (e expired) Unwrap() error { return e.error }

// share runs lookup once for all concurrent callers of key, detached from
// the first caller's cancellation but bounded by its deadline, and records
// the answer or the failure.
func (r *Resolver) share(ctx context.Context, key string, lookup func(context.Context) (answer, error)) (answer, error) {
	ch := r.flight.DoChan(key, func() (any, error) {
		lctx, cancel := registries.Detach(ctx)
		defer cancel()
		a, err := lookup(lctx)
		if err != nil {
			if lctx.Err() != nil {
				// A caller's own deadline is not the registry's fault.
				return nil, expired{err}
			}
			r.failures.Add(key, failure{err: err, at: time.Now()})
			return nil, err
		}
		a.at = time.Now()
		r.failures.Remove(key)
		r.answers.Add(key, a)
		r.metrics.cacheEntries("answers", r.answers.Len())
		return a, nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return answer{}, res.Err
		}
		return res.Val.(answer), nil
	case <-ctx.Done():
		return answer{}, ctx.Err()
	}
}

func (r *Resolver) failed(registry string, s Strategy, start time.Time, old answer, known bool, err error) (Result, error) {
	if known {
		r.metrics.resolved(registry, s, "stale", start)
		return Result{Tag: old.tag, Digest: old.digest, Stale: true}, err
	}
	r.metrics.resolved(registry, s, "error", start)
	return Result{}, err
}
