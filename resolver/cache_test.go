package resolver

import (
	"fmt"
	"testing"
)

func TestTheAnswersCacheIsSharedMaxMinFairlyByNamespace(t *testing.T) {
	const bound = 20000
	c := newFairCache[string, int](bound)
	for i := range 3 {
		c.Add("victim", fmt.Sprint("victim-", i), i)
	}
	for i := range 25000 {
		c.Add("attacker", fmt.Sprint("attacker-", i), i)
	}
	for i := range 3 {
		if _, ok := c.Get("victim", fmt.Sprint("victim-", i)); !ok {
			t.Errorf("the victim's answer %d was evicted by the attacker's 25,000", i)
		}
	}
	if n := c.Len(); n > bound {
		t.Errorf("the cache holds %d entries, want at most %d", n, bound)
	}

	// A second namespace as large as the first: each ends with its equal
	// share, whoever wrote last.
	for i := range 25000 {
		c.Add("other", fmt.Sprint("other-", i), i)
	}
	if a, o := c.holders["attacker"].lru.Len(), c.holders["other"].lru.Len(); a < bound/2-3 || o < bound/2-3 || a+o+3 != bound {
		t.Errorf("attacker holds %d, other %d: want an equal share each of %d", a, o, bound)
	}
	if c.holders["victim"].lru.Len() != 3 {
		t.Errorf("the victim lost answers to two large namespaces")
	}
	// An answer claimed by two namespaces stays while either holds it.
	c.Add("victim", "other-24999", 1)
	for i := range 25000 {
		c.Add("other", fmt.Sprint("again-", i), i)
	}
	if _, ok := c.Get("victim", "other-24999"); !ok {
		t.Errorf("an answer the victim used was evicted with the other namespace's claim")
	}
}
