package resolver

import (
	"fmt"
	"sync"
)

// flight shares one run of a function among concurrent callers of the same
// key, as singleflight does, but with a typed comparable key so that what
// scopes a lookup (the entry's identity) cannot be lost in string building.
type flight[K comparable, V any] struct {
	mu    sync.Mutex
	calls map[K]*call[V]
}

type call[V any] struct {
	data any // set by the leader at start, for those who join
	done chan struct{}
	val  V
	err  error
}

// start runs fn in its own goroutine unless a run for k is in flight, and
// returns the call to wait on; leader says this caller started it.
func (f *flight[K, V]) start(k K, data any, fn func() (V, error)) (c *call[V], leader bool) {
	f.mu.Lock()
	if c, ok := f.calls[k]; ok {
		f.mu.Unlock()
		return c, false
	}
	if f.calls == nil {
		f.calls = map[K]*call[V]{}
	}
	c = &call[V]{data: data, done: make(chan struct{})}
	f.calls[k] = c
	f.mu.Unlock()
	go func() {
		defer func() {
			if p := recover(); p != nil {
				c.err = fmt.Errorf("resolver: lookup panicked: %v", p)
			}
			f.mu.Lock()
			delete(f.calls, k)
			f.mu.Unlock()
			close(c.done)
		}()
		c.val, c.err = fn()
	}()
	return c, true
}
