package state

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// Gave is what the webhook answered for a query, whichever replica
// answered: the record's digest and its history, from the informer, for
// the namespaces the query's entry admits.
func TestGaveIsTheRecordsDigestOrItsHistoryForTheNamespacesItsEntryAdmits(t *testing.T) {
	f := newFixture(t)
	a, b := f.store(nil), f.store(nil)
	ctx := context.Background()
	q := f.query("moving", "latest", "team-a")
	e := *q.Target.Entry
	e.Namespaces = []string{"team-a"}
	q.Target.Entry = &e
	digest := func(i int) string { return fmt.Sprintf("sha256:%064d", i) }
	prev, err := a.Save(ctx, q, "team-a", nil, stored(digest(1)))
	if err != nil {
		t.Fatal(err)
	}
	for i := 2; i <= 3; i++ { // the tag moves twice
		f.seen(a, q)
		next := stored(digest(i))
		next.At = next.At.Add(time.Duration(i) * time.Second)
		if prev, err = a.Save(ctx, q, "team-a", &prev, next); err != nil || prev.Digest != digest(i) {
			t.Fatalf("move %d: %+v, %v", i, prev, err)
		}
	}
	f.seen(b, q)
	tests := []struct {
		name    string
		ns, tag string
		digest  string
		want    bool
	}{
		{"the record's digest", "team-a", "latest", digest(3), true},
		{"a digest of its history", "team-a", "latest", digest(1), true},
		{"a digest it never gave", "team-a", "latest", digest(9), false},
		{"a digest of its history under another tag", "team-a", "other", digest(2), false},
		{"for a namespace its entry does not admit", "team-b", "latest", digest(3), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := b.Gave(ctx, q, tc.ns, tc.tag, tc.digest); got != tc.want {
				t.Errorf("Gave(%s, %s@%s) = %v, want %v", tc.ns, tc.tag, tc.digest, got, tc.want)
			}
		})
	}
	if b.Gave(ctx, f.query("never-stored", "latest", "team-a"), "team-a", "latest", digest(3)) {
		t.Error("a query without a record counted as given")
	}
}
