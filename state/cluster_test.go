package state

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/image-pin/image-pin-webhook/api/v1alpha1"
	"github.com/image-pin/image-pin-webhook/resolver"
)

func stored(digest string) resolver.Stored {
	now := time.Now()
	return resolver.Stored{Tag: "latest", Digest: digest, At: now, Changed: now}
}

func TestTwoReplicasSavingANewAnswerAtOnceKeepOneRecordAndGiveItsAnswer(t *testing.T) {
	f := newFixture(t)
	a, b := f.store(nil), f.store(nil)
	for i := range 5 {
		q := f.query(fmt.Sprintf("race-%d", i), "latest", "team-a")
		var wg sync.WaitGroup
		got := make([]resolver.Stored, 2)
		errs := make([]error, 2)
		for j, c := range []*Cluster{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got[j], errs[j] = c.Save(context.Background(), q, "team-a", nil, stored(fmt.Sprintf("sha256:%064d", j+1)))
			}()
		}
		wg.Wait()
		if errs[0] != nil || errs[1] != nil {
			t.Fatalf("saves: %v, %v", errs[0], errs[1])
		}
		if got[0].Digest != got[1].Digest {
			t.Fatalf("the replicas answered %s and %s for one query", got[0].Digest, got[1].Digest)
		}
		if ir, ok := f.record(q); !ok || ir.Status.Digest != got[0].Digest {
			t.Fatalf("the record holds %+v, want %s", ir, got[0].Digest)
		}
	}
	if n := len(f.records()); n != 5 {
		t.Fatalf("%d records for 5 queries", n)
	}
}

func TestAnUpdateFromAnOlderVersionGivesTheNewerRecord(t *testing.T) {
	f := newFixture(t)
	a, b := f.store(nil), f.store(nil)
	q := f.query("app", "latest", "team-a")
	first, err := a.Save(context.Background(), q, "team-a", nil, stored("sha256:"+strings.Repeat("1", 64)))
	if err != nil {
		t.Fatal(err)
	}
	f.seen(a, q)
	f.seen(b, q)
	old := first
	old.At = time.Now().Add(-2 * time.Hour) // due a confirmation: a write
	moved, err := a.Save(context.Background(), q, "team-a", &old, stored("sha256:"+strings.Repeat("2", 64)))
	if err != nil {
		t.Fatal(err)
	}
	// b saves from the version it had before a's move.
	got, err := b.Save(context.Background(), q, "team-a", &old, stored("sha256:"+strings.Repeat("3", 64)))
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest != moved.Digest {
		t.Fatalf("b's save from an older version answered %s, want the record's %s", got.Digest, moved.Digest)
	}
}

func TestANamespacePastItsBoundKeepsAnswersInMemoryAndNeverTakesAnothersRecords(t *testing.T) {
	f := newFixture(t)
	f.limits.Store(&Limits{RefreshWindow: time.Hour, RecordRetention: 168 * time.Hour, MaxRecordsPerNamespace: 2, MaxRecords: 20000})
	m := newMetrics()
	c := f.store(m)
	ctx := context.Background()
	theirs := f.query("theirs", "latest", "team-b")
	if _, err := c.Save(ctx, theirs, "team-b", nil, stored("sha256:"+strings.Repeat("b", 64))); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		q := f.query(fmt.Sprintf("mine-%d", i), "latest", "team-a")
		_, err := c.Save(ctx, q, "team-a", nil, stored(fmt.Sprintf("sha256:%064d", i)))
		switch {
		case i < 2 && err != nil:
			t.Fatalf("record %d of team-a: %v", i, err)
		case i >= 2 && !errors.Is(err, ErrMemoryOnly):
			t.Fatalf("record %d of team-a past its bound of 2: %v, want ErrMemoryOnly", i, err)
		}
	}
	byNS := map[string]int{}
	for _, ir := range f.records() {
		byNS[ir.Spec.Namespace]++
	}
	if byNS["team-a"] != 2 || byNS["team-b"] != 1 {
		t.Fatalf("records by namespace %v, want team-a 2 and team-b 1", byNS)
	}
	if got := testutil.ToFloat64(m.writes.WithLabelValues("memory_only")); got != 3 {
		t.Fatalf("memory_only writes = %v, want 3", got)
	}
	// Retention is the only deletion, and it goes by time: the bound
	// never deleted team-b's record.
	if _, ok := f.record(theirs); !ok {
		t.Fatal("team-b's record is gone")
	}
}

func TestRecordsPastTheTotalBoundAreKeptInMemoryWhateverTheNamespace(t *testing.T) {
	f := newFixture(t)
	// Each namespace stays within its own share: the total bound alone
	// stops a flood of namespaces (forged or real) from growing the records.
	f.limits.Store(&Limits{RefreshWindow: time.Hour, RecordRetention: 168 * time.Hour, MaxRecordsPerNamespace: 1000, MaxRecords: 3})
	m := newMetrics()
	c := f.store(m)
	ctx := context.Background()
	for i := range 6 {
		ns := fmt.Sprintf("team-%d", i)
		_, err := c.Save(ctx, f.query(fmt.Sprintf("app-%d", i), "latest", ns), ns, nil, stored(fmt.Sprintf("sha256:%064d", i)))
		switch {
		case i < 3 && err != nil:
			t.Fatalf("record %d, within the total bound of 3: %v", i, err)
		case i >= 3 && !errors.Is(err, ErrMemoryOnly):
			t.Fatalf("record %d past the total bound of 3: %v, want ErrMemoryOnly", i, err)
		}
	}
	if n := len(f.records()); n != 3 {
		t.Fatalf("%d records, want the total bound of 3", n)
	}
	if got := testutil.ToFloat64(m.writes.WithLabelValues("memory_only_max_records")); got != 3 {
		t.Fatalf("memory_only_max_records writes = %v, want 3", got)
	}
	if got := testutil.ToFloat64(m.writes.WithLabelValues("memory_only")); got != 0 {
		t.Fatalf("memory_only writes = %v, want 0: no namespace is past its own bound", got)
	}
}

func TestLastUsedIsWrittenAtMostOncePerRecordPerRefreshWindow(t *testing.T) {
	f := newFixture(t)
	m := newMetrics()
	c := f.store(m)
	ctx := context.Background()
	q := f.query("used", "latest", "team-a")
	if _, err := c.Save(ctx, q, "team-a", nil, stored("sha256:"+strings.Repeat("1", 64))); err != nil {
		t.Fatal(err)
	}
	f.seen(c, q)
	for range 100 { // just created: used now
		if _, ok := c.Load(ctx, q, "team-a"); !ok {
			t.Fatal("no record")
		}
	}
	if got := testutil.ToFloat64(m.writes.WithLabelValues("used")); got != 0 {
		t.Fatalf("%v lastUsed writes right after the create, want 0", got)
	}
	f.age(q, 2*time.Hour, 2*time.Hour) // a window ago and more
	f.seen(c, q)
	dry := resolver.WithAdmission(ctx, resolver.Admission{Namespace: "team-a", DryRun: true})
	for range 100 {
		c.Load(dry, q, "team-a")
	}
	c.mu.RLock()
	noted := len(c.touched)
	c.mu.RUnlock()
	if noted != 0 {
		t.Fatal("a dry run's use was noted: a dry run writes nothing")
	}
	for range 100 {
		c.Load(ctx, q, "team-a")
	}
	eventually(t, "lastUsed written", func() bool { return testutil.ToFloat64(m.writes.WithLabelValues("used")) == 1 })
	f.seen(c, q)
	for range 100 {
		c.Load(ctx, q, "team-a")
	}
	ir, _ := f.record(q)
	if since := time.Since(ir.Status.LastUsed.Time); since > time.Minute {
		t.Fatalf("lastUsed is %s old after the uses", since)
	}
	if got := testutil.ToFloat64(m.writes.WithLabelValues("used")); got != 1 {
		t.Fatalf("%v lastUsed writes for 200 uses in one window, want 1", got)
	}
}

func TestARecordKeepsTheLastTenDigestsNewestFirst(t *testing.T) {
	var st v1alpha1.ImageResolutionStatus
	start := time.Now().Add(-time.Hour).Truncate(time.Second)
	for i := range 13 {
		if !moveTo(&st, "latest", fmt.Sprintf("sha256:%064d", i), start.Add(time.Duration(i)*time.Minute)) {
			t.Fatalf("move %d was not a change", i)
		}
	}
	if moveTo(&st, "latest", fmt.Sprintf("sha256:%064d", 12), time.Now()) {
		t.Fatal("the same answer again was taken for a move")
	}
	if len(st.History) != v1alpha1.MaxHistory {
		t.Fatalf("history of %d, want %d", len(st.History), v1alpha1.MaxHistory)
	}
	for i, h := range st.History {
		want := fmt.Sprintf("sha256:%064d", 11-i)
		if h.Digest != want || !h.Until.Time.Equal(start.Add(time.Duration(12-i)*time.Minute)) || !h.Seen.Time.Equal(start.Add(time.Duration(11-i)*time.Minute)) {
			t.Fatalf("history[%d] = %+v, want %s seen at +%dm until +%dm", i, h, want, 11-i, 12-i)
		}
	}
	if st.Digest != fmt.Sprintf("sha256:%064d", 12) || st.ShortDigest != strings.Repeat("0", 12) {
		t.Fatalf("current %s (%s)", st.Digest, st.ShortDigest)
	}
}
