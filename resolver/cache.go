package resolver

import (
	"container/heap"
	"container/list"
	"sync"
)

// fairCache is the answers cache, which is also the last known good: an
// answer it drops is one an outage can no longer be bridged with. Entries
// live while some namespace holds a claim on them (it stored or used the
// answer), and the cache bounds the claims, not the entries: past the
// bound, the namespace holding the most claims loses its least recently
// used one. So the cache is shared max-min fairly: one namespace writing any
// number of distinct policies evicts only its own answers while it holds
// more than any other, and a namespace with few answers keeps them as long
// as it holds fewer than its equal share. Entries never exceed the bound
// since each holds at least one claim.
type fairCache[K comparable, V any] struct {
	mu      sync.Mutex
	max     int
	claims  int
	entries map[K]*fairEntry[V]
	holders map[string]*holder[K]
	order   holderHeap[K] // largest holder first
}

type fairEntry[V any] struct {
	val     V
	holders int
}

// holder is one namespace's claims, most recently used first.
type holder[K comparable] struct {
	ns    string
	lru   *list.List
	at    map[K]*list.Element
	index int // in fairCache.order
}

func newFairCache[K comparable, V any](n int) *fairCache[K, V] {
	return &fairCache[K, V]{max: max(n, 1), entries: map[K]*fairEntry[V]{}, holders: map[string]*holder[K]{}}
}

// Get returns k's value and, when there is one, claims it for ns.
func (c *fairCache[K, V]) Get(ns string, k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok {
		var zero V
		return zero, false
	}
	c.claim(ns, k, e)
	return e.val, true
}

// Peek returns k's value without claiming it.
func (c *fairCache[K, V]) Peek(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[k]; ok {
		return e.val, true
	}
	var zero V
	return zero, false
}

// Add stores v for k and claims it for ns.
func (c *fairCache[K, V]) Add(ns string, k K, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok {
		e = &fairEntry[V]{}
		c.entries[k] = e
	}
	e.val = v
	c.claim(ns, k, e)
}

// Len is how many entries the cache holds.
func (c *fairCache[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

func (c *fairCache[K, V]) claim(ns string, k K, e *fairEntry[V]) {
	h, ok := c.holders[ns]
	if !ok {
		h = &holder[K]{ns: ns, lru: list.New(), at: map[K]*list.Element{}}
		c.holders[ns] = h
		heap.Push(&c.order, h)
	}
	if el, ok := h.at[k]; ok {
		h.lru.MoveToFront(el)
		return
	}
	h.at[k] = h.lru.PushFront(k)
	e.holders++
	c.claims++
	heap.Fix(&c.order, h.index)
	for c.claims > c.max {
		c.evict(c.order[0])
	}
}

// evict drops h's least recently used claim, and the entry with it when no
// other namespace claims it.
func (c *fairCache[K, V]) evict(h *holder[K]) {
	el := h.lru.Back()
	k := el.Value.(K)
	h.lru.Remove(el)
	delete(h.at, k)
	c.claims--
	e := c.entries[k]
	if e.holders--; e.holders == 0 {
		delete(c.entries, k)
	}
	if h.lru.Len() == 0 {
		heap.Remove(&c.order, h.index)
		delete(c.holders, h.ns)
		return
	}
	heap.Fix(&c.order, h.index)
}

// holderHeap orders holders by their number of claims, largest first.
type holderHeap[K comparable] []*holder[K]

func (q holderHeap[K]) Len() int           { return len(q) }
func (q holderHeap[K]) Less(i, j int) bool { return q[i].lru.Len() > q[j].lru.Len() }
func (q holderHeap[K]) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}
func (q *holderHeap[K]) Push(x any) {
	h := x.(*holder[K])
	h.index = len(*q)
	*q = append(*q, h)
}
func (q *holderHeap[K]) Pop() any {
	old := *q
	h := old[len(old)-1]
	*q = old[:len(old)-1]
	return h
}
