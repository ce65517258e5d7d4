package resolver_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/image-pin/image-pin-webhook/resolver"
	"github.com/image-pin/image-pin-webhook/test/registrytest"
)

// sharedStore is a Store as the records are, in memory: first writer
// wins, and an update based on an older version is refused with the
// current record, as the API server's optimistic concurrency does.
type sharedStore struct {
	mu     sync.Mutex
	recs   map[string]resolver.Stored
	writes int
}

func newSharedStore() *sharedStore { return &sharedStore{recs: map[string]resolver.Stored{}} }

func (s *sharedStore) Load(_ context.Context, q resolver.Query, _ string) (resolver.Stored, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.recs[q.Hash()]
	return r, ok
}

func (s *sharedStore) Save(_ context.Context, q resolver.Query, _ string, prev *resolver.Stored, a resolver.Stored) (resolver.Stored, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.recs[q.Hash()]
	if ok && (prev == nil || prev.Version != cur.Version) {
		return cur, nil // someone stored first
	}
	if ok && cur.Digest == a.Digest {
		return cur, nil // a confirmation: no write
	}
	s.writes++
	a.Version = strconv.Itoa(s.writes)
	s.recs[q.Hash()] = a
	return a, nil
}

func (s *sharedStore) set(q resolver.Query, a resolver.Stored) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	a.Version = strconv.Itoa(s.writes)
	s.recs[q.Hash()] = a
}

// storeFixture is a registry with app:latest pushed (first is its digest),
// the digest query of it, and an empty store shared by the resolvers a test
// makes, as the records are by replicas.
func storeFixture(t *testing.T) (srv *registrytest.Server, first string, q resolver.Query, store *sharedStore) {
	srv = registrytest.New(t)
	first = srv.PushImage(t, "app:latest")
	return srv, first, query(setup(t, srv, "app"), "latest", digestPolicy()), newSharedStore()
}

func admission(t *testing.T, ns string, dryRun bool) context.Context {
	return resolver.WithAdmission(ctxFor(t, 10*time.Second), resolver.Admission{Namespace: ns, DryRun: dryRun})
}

func TestAnAnswerAnotherReplicaStoredIsServedWithoutALookup(t *testing.T) {
	srv := registrytest.New(t)
	want := srv.PushImage(t, "app:latest")
	tgt := setup(t, srv, "app")
	store := newSharedStore()
	a, b := resolver.New(resolver.WithStore(store)), resolver.New(resolver.WithStore(store))
	q := query(tgt, "latest", digestPolicy())
	if res, err := a.Resolve(admission(t, "team-a", false), q); err != nil || res.Digest != want {
		t.Fatalf("replica A: %+v, %v; want %s", res, err, want)
	}
	srv.PushImage(t, "app:latest") // the tag moves
	srv.Reset()
	res, err := b.Resolve(admission(t, "team-a", false), q)
	if err != nil || res.Digest != want {
		t.Fatalf("replica B: %+v, %v; want A's %s", res, err, want)
	}
	if n := srv.Total(); n != 0 {
		t.Errorf("replica B sent %d requests to the registry, want 0", n)
	}
	if store.writes != 1 {
		t.Errorf("writes = %d, want 1", store.writes)
	}
}

func TestANewerStoredAnswerReplacesWhatMemoryHolds(t *testing.T) {
	srv, first, q, store := storeFixture(t)
	r := resolver.New(resolver.WithStore(store))
	if res, err := r.Resolve(admission(t, "team-a", false), q); err != nil || res.Digest != first {
		t.Fatalf("%+v, %v; want %s", res, err, first)
	}
	// Another replica's rollout restart stored the moved tag.
	moved := srv.PushImage(t, "app:latest")
	now := time.Now()
	store.set(q, resolver.Stored{Tag: "latest", Digest: moved, At: now, Changed: now})
	if res, err := r.Resolve(admission(t, "team-a", false), q); err != nil || res.Digest != moved {
		t.Fatalf("%+v, %v; want the stored %s", res, err, moved)
	}
}

func TestTwoReplicasThatLookUpAtOnceGiveTheAnswerStoredFirst(t *testing.T) {
	srv := registrytest.New(t)
	srv.PushImage(t, "app:latest")
	tgt := setup(t, srv, "app")
	store := newSharedStore()
	q := query(tgt, "latest", digestPolicy())
	// Another replica stored its answer while this one was looking up.
	stored := "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	r := resolver.New(resolver.WithStore(&racingStore{sharedStore: store, first: resolver.Stored{Tag: "latest", Digest: stored, At: time.Now(), Changed: time.Now()}}))
	res, err := r.Resolve(admission(t, "team-a", false), q)
	if err != nil || res.Digest != stored {
		t.Fatalf("%+v, %v; want the stored %s", res, err, stored)
	}
	if res, err := r.Resolve(admission(t, "team-a", false), q); err != nil || res.Digest != stored || !res.Cached {
		t.Fatalf("again: %+v, %v; want the stored %s from memory", res, err, stored)
	}
}

// racingStore stores first for another replica at the moment this one saves.
type racingStore struct {
	*sharedStore
	first resolver.Stored
	once  sync.Once
}

func (r *racingStore) Save(ctx context.Context, q resolver.Query, ns string, prev *resolver.Stored, a resolver.Stored) (resolver.Stored, error) {
	r.once.Do(func() { r.set(q, r.first) })
	return r.sharedStore.Save(ctx, q, ns, prev, a)
}

func TestADryRunStoresNothingAndTheNextAdmissionStoresItsAnswer(t *testing.T) {
	_, want, q, store := storeFixture(t)
	r := resolver.New(resolver.WithStore(store))
	if res, err := r.Resolve(admission(t, "team-a", true), q); err != nil || res.Digest != want {
		t.Fatalf("dry run: %+v, %v; want %s", res, err, want)
	}
	if store.writes != 0 {
		t.Fatalf("a dry run wrote %d records, want 0", store.writes)
	}
	if res, err := r.Resolve(admission(t, "team-a", false), q); err != nil || res.Digest != want {
		t.Fatalf("%+v, %v; want %s", res, err, want)
	}
	if store.writes != 1 {
		t.Errorf("writes after the admission = %d, want 1", store.writes)
	}
}

func TestTheQueryHashTellsEntriesAndPoliciesApart(t *testing.T) {
	srv := registrytest.New(t)
	tgt := setup(t, srv, "app")
	other := setup(t, srv, "app", withLogin("u:p"))
	base := query(tgt, "latest", digestPolicy())
	for _, tc := range []struct {
		name string
		q    resolver.Query
		same bool
	}{
		{"the same query", query(tgt, "", digestPolicy()), true},
		{"another tag", query(tgt, "1.0", digestPolicy()), false},
		{"another credential source", query(other, "latest", digestPolicy()), false},
		{"another strategy", query(tgt, "latest", semverPolicy(t, "~1")), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.q.Hash() == base.Hash(); got != tc.same {
				t.Errorf("same hash = %v, want %v", got, tc.same)
			}
		})
	}
}

// The API server keeps a record's times in whole seconds (metav1.Time): a
// record another replica updated within the second this replica cached
// its answer still replaces it.
func TestAStoredAnswerOfTheSameSecondReplacesWhatMemoryHolds(t *testing.T) {
	srv, first, q, store := storeFixture(t)
	r := resolver.New(resolver.WithStore(store))
	before := time.Now()
	if res, err := r.Resolve(admission(t, "team-a", false), q); err != nil || res.Digest != first {
		t.Fatalf("%+v, %v; want %s", res, err, first)
	}
	moved := srv.PushImage(t, "app:latest")
	second := before.Truncate(time.Second)
	store.set(q, resolver.Stored{Tag: "latest", Digest: moved, At: second, Changed: second})
	if res, err := r.Resolve(admission(t, "team-a", false), q); err != nil || res.Digest != moved {
		t.Fatalf("%+v, %v; want the stored %s", res, err, moved)
	}
}

// A dry run of a rollout restart (kubectl diff, Argo CD's server-side diff)
// finds the moved tag and keeps it in memory only; the next real admission
// stores it, so that this replica never answers what the record does not say.
func TestADryRunsMovedAnswerIsStoredByTheNextAdmissionBeforeItIsServed(t *testing.T) {
	srv, first, q, store := storeFixture(t)
	r := resolver.New(resolver.WithStore(store))
	if res, err := r.Resolve(admission(t, "team-a", false), q); err != nil || res.Digest != first {
		t.Fatalf("%+v, %v; want %s", res, err, first)
	}
	// The record has given this digest for an hour, confirmed just now.
	store.set(q, resolver.Stored{Tag: "latest", Digest: first, At: time.Now(), Changed: time.Now().Add(-time.Hour)})
	moved := srv.PushImage(t, "app:latest")
	restart := q
	restart.Policy.Fresh = true
	if res, err := r.Resolve(admission(t, "team-a", true), restart); err != nil || res.Digest != moved {
		t.Fatalf("the dry-run restart: %+v, %v; want %s", res, err, moved)
	}
	if s, _ := store.Load(context.Background(), q, "team-a"); s.Digest != first {
		t.Fatalf("the dry run changed the record to %s", s.Digest)
	}
	res, err := r.Resolve(admission(t, "team-a", false), q)
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := store.Load(context.Background(), q, "team-a"); s.Digest != res.Digest {
		t.Fatalf("the replica answered %s while the record says %s", res.Digest, s.Digest)
	}
}
