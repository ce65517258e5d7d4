package resolver_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/image-pin/image-pin-webhook/resolver"
	"github.com/image-pin/image-pin-webhook/test/registrytest"
)

// Gave tells the answers the resolver gave a query, the current one and
// those of a tag that moved since (the last 4), from memory: never a
// registry request.
func TestGaveKnowsAMovedTagsOldAnswersWithoutARequest(t *testing.T) {
	srv := registrytest.New(t)
	tgt := setup(t, srv, "app")
	p := digestPolicy()
	p.CacheTTL = 0 // every Resolve looks the tag up: each move is seen
	q := query(tgt, "latest", p)
	r := resolver.New()
	var digests []string
	for range 6 {
		d := srv.PushImage(t, "app:latest")
		if res, err := r.Resolve(ctxFor(t, 10*time.Second), q); err != nil || res.Digest != d {
			t.Fatalf("%+v, %v; want %s", res, err, d)
		}
		digests = append(digests, d) // oldest first
	}
	srv.Reset()
	ctx := ctxFor(t, 10*time.Second)
	tests := []struct {
		name        string
		tag, digest string
		want        bool
	}{
		{"the current answer", "latest", digests[5], true},
		{"the answer before the last move", "latest", digests[4], true},
		{"the fourth answer back, the oldest kept", "latest", digests[1], true},
		{"the fifth answer back is forgotten", "latest", digests[0], false},
		{"a current digest under another tag is not the answer", "other", digests[5], false},
		{"a digest never given", "latest", "sha256:" + "1234567890123456789012345678901234567890123456789012345678901234", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := r.Gave(ctx, q, tc.tag, tc.digest); got != tc.want {
				t.Errorf("Gave(%s@%s) = %v, want %v", tc.tag, tc.digest, got, tc.want)
			}
		})
	}
	if n := srv.Total(); n != 0 {
		t.Errorf("Gave sent %d registry requests %v, want 0", n, srv.Received())
	}
	// Another query (another tag of the repository) shares none of it.
	if r.Gave(ctx, query(tgt, "other", p), "latest", digests[5]) {
		t.Error("another query's answer counted as given")
	}
}

// A tag moved back to a digest it had is one entry, and a move to the
// same answer (a confirmation) keeps the past as it was.
func TestGaveKeepsEachPastAnswerOnce(t *testing.T) {
	srv := registrytest.New(t)
	tgt := setup(t, srv, "app")
	p := digestPolicy()
	p.CacheTTL = 0
	q := query(tgt, "latest", p)
	r := resolver.New()
	imgA, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	a := srv.Push(t, "app:latest", imgA)
	resolve := func() {
		t.Helper()
		if _, err := r.Resolve(ctxFor(t, 10*time.Second), q); err != nil {
			t.Fatal(err)
		}
	}
	resolve()
	b := srv.PushImage(t, "app:latest")
	resolve()
	resolve() // confirmed: the past stays [a]
	srv.Push(t, "app:latest", imgA)
	resolve() // back to a: the past is [b], not [b a]
	ctx := ctxFor(t, 10*time.Second)
	if !r.Gave(ctx, q, "latest", a) || !r.Gave(ctx, q, "latest", b) {
		t.Fatalf("Gave(a)=%v Gave(b)=%v, want both", r.Gave(ctx, q, "latest", a), r.Gave(ctx, q, "latest", b))
	}
}

// With a Store that keeps its records' history, what another replica (or
// this process before a restart) answered counts, for a namespace the
// query's entry admits only.
func TestGaveAsksTheStoresHistory(t *testing.T) {
	srv, first, q, store := storeFixture(t)
	h := &historyStore{sharedStore: store, gave: map[string]bool{"latest@" + first: true}}
	r := resolver.New(resolver.WithStore(h))
	srv.Reset()
	if !r.Gave(admission(t, "team-a", false), q, "latest", first) {
		t.Error("the store's history was not asked")
	}
	if h.ns != "team-a" {
		t.Errorf("the store was asked for namespace %q, want the admission's team-a", h.ns)
	}
	if r.Gave(admission(t, "team-a", false), q, "latest", "sha256:"+"0000000000000000000000000000000000000000000000000000000000000000") {
		t.Error("a digest neither memory nor the store holds counted as given")
	}
	if n := srv.Total(); n != 0 {
		t.Errorf("Gave sent %d registry requests, want 0", n)
	}
}

type historyStore struct {
	*sharedStore
	gave map[string]bool
	ns   string
}

func (h *historyStore) Gave(_ context.Context, _ resolver.Query, ns, tag, digest string) bool {
	h.ns = ns
	return h.gave[tag+"@"+digest]
}
