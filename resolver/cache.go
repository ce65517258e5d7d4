package resolver

import (
	"container/heap"
	"container/list"
	"sync"
)

// fairCache is every cache of the resolver: the answers (which are also the
// last known good: an answer it drops is one an outage can no longer be
// bridged with), the tag lists, descriptors, metadata and recent failures.
// Entries live while some namespace holds a claim on them (it stored or
// used the entry), and the cache bounds the claims' cost, not the entries:
// past the bound, the namespace holding the most loses its least recently
// used claim. So the cache is shared max-min fairly: one namespace writing
// any number of distinct policies or images evicts only its own entries
// while it holds more than any other, and a namespace with few entries
// keeps them as long as it holds less than its equal share. Entries never
// cost more than the bound since each holds at least one claim.
//
// A claim costs what its entry cost when it was last claimed (cost, or 1
// each): the tag-list cache counts tags, the others entries. The namespace
// that stores a value claims it at its new cost, so the claims' cost is
// never less than that of the entries.
type fairCache[K comparable, V any] struct {
	mu      sync.Mutex
	max     int
	claims  int         // the claims' cost
	cost    func(V) int // nil: each entry costs 1
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
	lru   *list.List // of *claim[K]
	at    map[K]*list.Element
	cost  int
	index int // in fairCache.order
}

type claim[K comparable] struct {
	k    K
	cost int
}

func newFairCache[K comparable, V any](n int) *fairCache[K, V] {
	return &fairCache[K, V]{max: max(n, 1), entries: map[K]*fairEntry[V]{}, holders: map[string]*holder[K]{}}
}

// newCostedCache is a fairCache whose bound n counts cost(v) per claim.
func newCostedCache[K comparable, V any](n int, cost func(V) int) *fairCache[K, V] {
	c := newFairCache[K, V](n)
	c.cost = cost
	return c
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
	c.AddWith(ns, k, func(V, bool) V { return v })
}

// AddWith stores f(old, had) for k, from what k held (had: anything),
// and claims it for ns, at once: no other Add comes between the read and
// the write.
func (c *fairCache[K, V]) AddWith(ns string, k K, f func(old V, had bool) V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok {
		e = &fairEntry[V]{}
		c.entries[k] = e
	}
	e.val = f(e.val, ok)
	c.claim(ns, k, e)
}

// Remove drops k and every claim on it.
func (c *fairCache[K, V]) Remove(k K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok {
		return
	}
	for _, h := range c.holders {
		if e.holders == 0 {
			break
		}
		if el, ok := h.at[k]; ok {
			c.unclaim(h, el)
		}
	}
}

// Len is how many entries the cache holds.
func (c *fairCache[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

func (c *fairCache[K, V]) costOf(v V) int {
	if c.cost == nil {
		return 1
	}
	return max(c.cost(v), 1)
}

func (c *fairCache[K, V]) claim(ns string, k K, e *fairEntry[V]) {
	h, ok := c.holders[ns]
	if !ok {
		h = &holder[K]{ns: ns, lru: list.New(), at: map[K]*list.Element{}}
		c.holders[ns] = h
		heap.Push(&c.order, h)
	}
	cost := c.costOf(e.val)
	if el, ok := h.at[k]; ok {
		cl := el.Value.(*claim[K])
		h.cost += cost - cl.cost
		c.claims += cost - cl.cost
		cl.cost = cost
		h.lru.MoveToFront(el)
	} else {
		h.at[k] = h.lru.PushFront(&claim[K]{k: k, cost: cost})
		e.holders++
		h.cost += cost
		c.claims += cost
	}
	heap.Fix(&c.order, h.index)
	for c.claims > c.max && len(c.order) > 0 {
		top := c.order[0]
		c.unclaim(top, top.lru.Back())
	}
}

// unclaim drops h's claim el, and the entry with it when no other
// namespace claims it.
func (c *fairCache[K, V]) unclaim(h *holder[K], el *list.Element) {
	cl := el.Value.(*claim[K])
	h.lru.Remove(el)
	delete(h.at, cl.k)
	h.cost -= cl.cost
	c.claims -= cl.cost
	e := c.entries[cl.k]
	if e.holders--; e.holders == 0 {
		delete(c.entries, cl.k)
	}
	if h.lru.Len() == 0 {
		heap.Remove(&c.order, h.index)
		delete(c.holders, h.ns)
		return
	}
	heap.Fix(&c.order, h.index)
}

// holderHeap orders holders by the cost of their claims, largest first.
type holderHeap[K comparable] []*holder[K]

func (q holderHeap[K]) Len() int           { return len(q) }
func (q holderHeap[K]) Less(i, j int) bool { return q[i].cost > q[j].cost }
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
