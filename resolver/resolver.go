package resolver

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/hashicorp/golang-lru/v2/expirable"
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
	ttl        atomic.Int64 // time.Duration; 0 turns the answer cache off
	failureTTL time.Duration
	metrics    *Metrics

	answers  *lru.Cache[string, answer]    // kept past their TTL as last known good
	tags     *lru.Cache[string, tagList]   // repository → tags
	meta     *lru.Cache[string, metadata]  // digest → immutable metadata
	failures *expirable.LRU[string, error] // recent failures, so a dead registry is not hammered
	flight   singleflight.Group
}

type answer struct {
	tag, digest string
	at          time.Time
}

type tagList struct {
	tags []string
	at   time.Time
}

// Option configures a Resolver.
type Option func(*options)

type options struct {
	ttl, failureTTL      time.Duration
	answers, tags, metas int
	metrics              *Metrics
}

// WithCacheTTL sets how long an answer is served from the cache (policy.cache_ttl).
func WithCacheTTL(d time.Duration) Option { return func(o *options) { o.ttl = d } }

// WithFailureTTL sets how long a failed lookup is answered from memory.
func WithFailureTTL(d time.Duration) Option { return func(o *options) { o.failureTTL = d } }

// WithCacheSizes bounds the caches: answers, tag lists, and digest metadata.
func WithCacheSizes(answers, tags, metas int) Option {
	return func(o *options) { o.answers, o.tags, o.metas = answers, tags, metas }
}

// WithMetrics sets where resolutions are recorded.
func WithMetrics(m *Metrics) Option { return func(o *options) { o.metrics = m } }

// New makes a Resolver.
func New(opts ...Option) *Resolver {
	o := options{ttl: 5 * time.Minute, failureTTL: 3 * time.Second, answers: 20000, tags: 2000, metas: 20000}
	for _, opt := range opts {
		opt(&o)
	}
	r := &Resolver{failureTTL: o.failureTTL, metrics: o.metrics}
	r.ttl.Store(int64(o.ttl))
	r.answers, _ = lru.New[string, answer](o.answers)
	r.tags, _ = lru.New[string, tagList](o.tags)
	r.meta, _ = lru.New[string, metadata](o.metas)
	r.failures = expirable.NewLRU[string, error](o.answers, nil, max(o.failureTTL, time.Millisecond))
	return r
}

// SetCacheTTL changes the answer TTL, on a config reload.
func (r *Resolver) SetCacheTTL(d time.Duration) { r.ttl.Store(int64(d)) }

func (r *Resolver) fresh(at time.Time) bool {
	ttl := time.Duration(r.ttl.Load())
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
	if known && !p.Fresh && r.fresh(old.at) {
		r.metrics.resolved(e.Name, p.Strategy, "cache_hit", start)
		return Result{Tag: old.tag, Digest: old.digest, Cached: true}, nil
	}
	if err, failed := r.failures.Get(key); failed && !p.Fresh {
		return r.failed(e.Name, p.Strategy, start, old, known, err)
	}
	ch := r.flight.DoChan(key, func() (any, error) {
		lctx, cancel := registries.Detach(ctx)
		defer cancel()
		a, err := r.lookup(lctx, t, tag, p)
		if err != nil {
			// A caller's own deadline is not the registry's fault.
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				r.failures.Add(key, err)
			}
			return nil, err
		}
		a.at = time.Now()
		r.answers.Add(key, a)
		r.metrics.cacheEntries("answers", r.answers.Len())
		return a, nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return r.failed(e.Name, p.Strategy, start, old, known, res.Err)
		}
		a := res.Val.(answer)
		r.metrics.resolved(e.Name, p.Strategy, "resolved", start)
		return Result{Tag: a.tag, Digest: a.digest}, nil
	case <-ctx.Done():
		return r.failed(e.Name, p.Strategy, start, old, known, fmt.Errorf("no answer from %s in time: %w", e.Name, ctx.Err()))
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

// Forget drops everything cached about every repository, for tests and
// for an operator who wants a cold start without a restart.
func (r *Resolver) Forget() {
	r.answers.Purge()
	r.tags.Purge()
	r.failures.Purge()
}
