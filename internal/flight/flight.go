// Package flight shares one run of a function among concurrent callers of
// the same key, as golang.org/x/sync/singleflight does, but with a typed
// comparable key, so that what scopes a shared call (an entry's identity, a
// credential's) cannot be lost in string building, and with a value for
// those who join (the share a lookup is charged to).
package flight

import (
	"context"
	"fmt"
	"sync"
)

// Group holds the calls in flight by key. The zero Group is ready to use.
type Group[K comparable, V any] struct {
	mu    sync.Mutex
	calls map[K]*Call[V]
}

// Call is one run of a function, shared by its leader and those who join.
type Call[V any] struct {
	data any
	done chan struct{}
	val  V
	err  error
}

// Data is what the leader passed to Start, for those who join.
func (c *Call[V]) Data() any { return c.data }

// Done is closed when the run has returned.
func (c *Call[V]) Done() <-chan struct{} { return c.done }

// Result is the run's answer; read it once Done is closed.
func (c *Call[V]) Result() (V, error) { return c.val, c.err }

// Start runs fn in its own goroutine unless a run for k is in flight, and
// returns the call to wait on; leader says this caller started it. The run
// is not tied to any caller's context, so a caller that gives up leaves it
// to the others; a panic in fn is the run's error, not the process's end.
func (g *Group[K, V]) Start(k K, data any, fn func() (V, error)) (c *Call[V], leader bool) {
	g.mu.Lock()
	if c, ok := g.calls[k]; ok {
		g.mu.Unlock()
		return c, false
	}
	if g.calls == nil {
		g.calls = map[K]*Call[V]{}
	}
	c = &Call[V]{data: data, done: make(chan struct{})}
	g.calls[k] = c
	g.mu.Unlock()
	go func() {
		defer func() {
			if p := recover(); p != nil {
				c.err = fmt.Errorf("shared call panicked: %v", p)
			}
			g.mu.Lock()
			delete(g.calls, k)
			g.mu.Unlock()
			close(c.done)
		}()
		c.val, c.err = fn()
	}()
	return c, true
}

// Do runs fn as Start does and waits for its answer, or for ctx to end,
// whichever comes first: a caller that gives up gets ctx's error and leaves
// the run to the others (and to be cached by fn, if it caches).
func (g *Group[K, V]) Do(ctx context.Context, k K, fn func() (V, error)) (V, error) {
	c, _ := g.Start(k, nil, fn)
	select {
	case <-c.Done():
		return c.Result()
	case <-ctx.Done():
		var zero V
		return zero, ctx.Err()
	}
}
