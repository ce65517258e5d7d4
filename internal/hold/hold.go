// Package hold remembers a failure for a while, so that what failed is not
// asked again at every call: a failing credential script runs once per
// hold, a cloud that refuses a login is not asked again by every lookup of
// every tenant while it throttles.
package hold

import (
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// Failures holds the last failure of each key, with whatever the caller
// keeps of it (V: the error, or more), for a fixed time after it was
// recorded. It keeps at most a fixed number of keys, forgetting the least
// recently recorded first: what a tenant can make fail is bounded by it.
// It is safe for concurrent use.
type Failures[K comparable, V any] struct {
	d time.Duration
	// mu makes Hold's check-and-add one step; the LRU has its own lock.
	mu sync.Mutex
	m  *lru.Cache[K, held[V]]
}

type held[V any] struct {
	v  V
	at time.Time
}

// New returns failures held for d, at most n keys of them (at least 1).
func New[K comparable, V any](d time.Duration, n int) *Failures[K, V] {
	m, _ := lru.New[K, held[V]](max(n, 1))
	return &Failures[K, V]{d: d, m: m}
}

// Hold records v as k's failure, now.
func (f *Failures[K, V]) Hold(k K, v V) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.m.Add(k, held[V]{v: v, at: time.Now()})
}

// Get returns k's failure while it is held: recorded less than d ago. An
// expired one is dropped.
func (f *Failures[K, V]) Get(k K) (V, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	h, ok := f.m.Peek(k)
	if !ok {
		var zero V
		return zero, false
	}
	if time.Since(h.at) >= f.d {
		f.m.Remove(k)
		var zero V
		return zero, false
	}
	return h.v, true
}

// Forget drops k's failure, after a success.
func (f *Failures[K, V]) Forget(k K) { f.m.Remove(k) }

// Len is how many failures are kept, held or expired but not yet dropped.
func (f *Failures[K, V]) Len() int { return f.m.Len() }
