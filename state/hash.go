package state

import (
	"sync"

	"github.com/image-pin/image-pin-webhook/resolver"
)

// maxHashes bounds the hashes kept by query: more queries in use at once
// than that only means hashing some of them again (a microsecond each),
// while a map that grows with every query ever asked would not be bounded.
const maxHashes = 16384

// hashes keeps each query's hash (its record's name and spec.queryHash) by
// the query's typed key, so that a warm admission computes no SHA-256: the
// hash was a third of the cost --state cluster added to an admission of 20
// images (docs/performance.md).
type hashes struct {
	mu   sync.RWMutex
	byID map[any]string
}

func (h *hashes) of(q resolver.Query) string {
	id := q.ID()
	h.mu.RLock()
	s, ok := h.byID[id]
	h.mu.RUnlock()
	if ok {
		return s
	}
	s = q.Hash()
	h.mu.Lock()
	if h.byID == nil || len(h.byID) >= maxHashes {
		h.byID = make(map[any]string)
	}
	h.byID[id] = s
	h.mu.Unlock()
	return s
}

// nameOf is the object name of a query's record, from its full hash.
func nameOf(hash string) string { return "q-" + hash[:40] }
