package state

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus/testutil"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/image-pin/image-pin-webhook/config"
	"github.com/image-pin/image-pin-webhook/resolver"
)

// leader is a refresher on its own store and resolver, as the elected
// replica runs it.
type leader struct {
	store   *Cluster
	m       *Metrics
	events  *events.FakeRecorder
	refresh *Refresher
}

func (f *fixture) leader() *leader {
	m := newMetrics()
	l := &leader{m: m, store: f.store(m), events: events.NewFakeRecorder(10)}
	l.refresh = NewRefresher(RefresherOptions{Store: l.store, Resolver: resolver.New(resolver.WithStore(l.store)),
		Config: func() *config.Config { return f.cfg }, Events: l.events, Log: logr.Discard(), Identity: "leader"})
	return l
}

func (l *leader) count(result string) float64 {
	return testutil.ToFloat64(l.m.refresh.WithLabelValues("plain", result))
}

// admitted stores app:latest's current digest as an admission would,
// confirmed and used ago.
func (f *fixture) admitted(c *Cluster, repo, digest string, confirmed, used time.Duration) resolver.Query {
	f.t.Helper()
	q := f.query(repo, "latest", "team-a")
	if _, err := c.Save(context.Background(), q, "team-a", nil, stored(digest)); err != nil {
		f.t.Fatal(err)
	}
	f.age(q, confirmed, used)
	f.seen(c, q)
	return q
}

func (f *fixture) heartbeat() *coordinationv1.Lease {
	f.t.Helper()
	l := &coordinationv1.Lease{}
	if err := f.c.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: HeartbeatLease}, l); err != nil {
		f.t.Fatalf("no heartbeat: %v", err)
	}
	return l
}

func TestARefreshOfAnUnmovedTagWritesNothingAndTheHeartbeatVouchesForIt(t *testing.T) {
	f := newFixture(t)
	l := f.leader()
	follower := f.store(nil)
	digest := f.reg.PushImage(t, "app:latest")
	q := f.admitted(l.store, "app", digest, 9*time.Second, time.Minute) // cache_ttl 10s: due
	before, _ := f.record(q)
	f.seen(follower, q)
	f.reg.Reset()
	l.refresh.Pass(context.Background())
	if got := l.count("unchanged"); got != 1 {
		t.Fatalf("unchanged refreshes = %v, want 1", got)
	}
	if n := f.reg.Count(http.MethodHead, "manifest"); n != 1 {
		t.Fatalf("the refresh made %d manifest HEADs, want 1", n)
	}
	after, _ := f.record(q)
	if after.ResourceVersion != before.ResourceVersion {
		t.Fatalf("a refresh that found the same digest wrote the record (%s → %s)", before.ResourceVersion, after.ResourceVersion)
	}
	hb := f.heartbeat()
	if hb.Spec.RenewTime == nil || time.Since(hb.Spec.RenewTime.Time) > time.Minute || hb.Annotations[notAnnotation] != "" {
		t.Fatalf("heartbeat %+v, want confirmed now with nothing not refreshed", hb)
	}
	// The follower takes the record as confirmed at the heartbeat's time.
	eventually(t, "the follower hears the heartbeat", func() bool {
		s, ok := follower.Load(context.Background(), q, "team-a")
		return ok && time.Since(s.At) < time.Minute
	})
	// A second pass finds nothing due.
	l.refresh.Pass(context.Background())
	if got := l.count("unchanged"); got != 1 {
		t.Fatalf("unchanged refreshes after a second pass = %v, want still 1", got)
	}
}

func TestARefreshOfAMovedTagKeepsTheOldDigestAndRecordsTagMoved(t *testing.T) {
	f := newFixture(t)
	l := f.leader()
	first := f.reg.PushImage(t, "app:latest")
	q := f.admitted(l.store, "app", first, 9*time.Second, time.Minute)
	moved := f.reg.PushImage(t, "app:latest")
	before, _ := f.record(q)
	l.refresh.Pass(context.Background())
	if got := l.count("moved"); got != 1 {
		t.Fatalf("moved refreshes = %v, want 1", got)
	}
	ir, _ := f.record(q)
	if ir.Status.Digest != moved || len(ir.Status.History) != 1 || ir.Status.History[0].Digest != first {
		t.Fatalf("record status %+v, want %s with %s in its history", ir.Status, moved, first)
	}
	if !ir.Status.LastUsed.Equal(before.Status.LastUsed) {
		t.Fatalf("the refresh wrote lastUsed (%s → %s): a refresh is no use", before.Status.LastUsed, ir.Status.LastUsed)
	}
	select {
	case e := <-l.events.Events:
		if !strings.Contains(e, "TagMoved") || !strings.Contains(e, moved) || !strings.Contains(e, first) {
			t.Fatalf("event %q, want TagMoved from %s to %s", e, first, moved)
		}
	default:
		t.Fatal("no TagMoved event")
	}
}

func TestARefreshThatFailsKeepsTheRecordAndIsNotVouchedFor(t *testing.T) {
	f := newFixture(t)
	l := f.leader()
	digest := f.reg.PushImage(t, "app:latest")
	q := f.admitted(l.store, "app", digest, 9*time.Second, time.Minute)
	f.reg.SetFault(func(w http.ResponseWriter, _ *http.Request) bool {
		http.Error(w, "down", http.StatusForbidden)
		return true
	})
	l.refresh.Pass(context.Background())
	if got := l.count("error"); got != 1 {
		t.Fatalf("error refreshes = %v, want 1", got)
	}
	ir, ok := f.record(q)
	if !ok || ir.Status.Digest != digest {
		t.Fatalf("after a failed refresh the record is %+v, want it kept with %s", ir, digest)
	}
	if hb := f.heartbeat(); hb.Annotations[notAnnotation] != Name(q) {
		t.Fatalf("the heartbeat names %q as not refreshed, want %s", hb.Annotations[notAnnotation], Name(q))
	}
	// The next pass does not ask the failing registry again at once.
	f.reg.Reset()
	l.refresh.Pass(context.Background())
	if n := f.reg.Total(); n != 0 || l.count("error") != 1 {
		t.Fatalf("the pass after a failed refresh made %d registry requests (%v errors), want none", n, l.count("error"))
	}
	if hb := f.heartbeat(); hb.Annotations[notAnnotation] != Name(q) {
		t.Fatalf("the heartbeat names %q as not refreshed, want still %s", hb.Annotations[notAnnotation], Name(q))
	}
	eventually(t, "the store hears the heartbeat", func() bool {
		l.store.mu.RLock()
		defer l.store.mu.RUnlock()
		return l.store.vouch.not[Name(q)]
	})
	if s, _ := l.store.Load(context.Background(), q, "team-a"); time.Since(s.At) < 5*time.Second {
		t.Fatalf("a record whose refresh failed is given as confirmed %s ago", time.Since(s.At))
	}
}

func TestRecordsNotUsedWithinTwoWindowsAreNotRefreshed(t *testing.T) {
	f := newFixture(t)
	l := f.leader()
	digest := f.reg.PushImage(t, "idle:latest")
	f.admitted(l.store, "idle", digest, 9*time.Second, 3*time.Hour) // refresh_window 1h
	f.reg.Reset()
	l.refresh.Pass(context.Background())
	if n := f.reg.Total(); n != 0 || l.count("unchanged")+l.count("moved")+l.count("error") != 0 {
		t.Fatalf("an idle record was refreshed: %d registry requests", n)
	}
}

func TestAQueryTheConfigNoLongerMakesIsSkippedAndNamed(t *testing.T) {
	f := newFixture(t)
	l := f.leader()
	digest := f.reg.PushImage(t, "app:latest")
	q := f.admitted(l.store, "app", digest, 9*time.Second, time.Minute)
	// The entry now asks for platforms: another query.
	cfg, err := config.Parse([]byte(strings.Replace(f.yaml, "  prefix:", "  platforms: [linux/amd64]\n  prefix:", 1)))
	if err != nil {
		t.Fatal(err)
	}
	f.cfg = cfg
	f.reg.Reset()
	l.refresh.Pass(context.Background())
	if n := f.reg.Total(); n != 0 {
		t.Fatalf("a record of another query was looked up (%d requests)", n)
	}
	if got := testutil.ToFloat64(l.m.skips.WithLabelValues("plain")); got != 1 {
		t.Fatalf("skips = %v, want 1", got)
	}
	if hb := f.heartbeat(); hb.Annotations[notAnnotation] != Name(q) {
		t.Fatalf("the heartbeat names %q as not refreshed, want %s", hb.Annotations[notAnnotation], Name(q))
	}
}

func TestRetentionDeletesOnlyRecordsUnusedForIt(t *testing.T) {
	f := newFixture(t)
	f.limits.Store(&Limits{RefreshWindow: time.Hour, RecordRetention: 168 * time.Hour, MaxRecordsPerNamespace: 1000, MaxRecords: 20000})
	l := f.leader()
	d := "sha256:" + strings.Repeat("a", 64)
	old := f.admitted(l.store, "old", d, 200*time.Hour, 169*time.Hour)
	recent := f.admitted(l.store, "recent", d, 200*time.Hour, time.Hour)
	// Another namespace's: used recently, kept whatever team-a does.
	other := f.query("other", "latest", "team-b")
	if _, err := l.store.Save(context.Background(), other, "team-b", nil, stored(d)); err != nil {
		t.Fatal(err)
	}
	f.seen(l.store, other)
	f.cfg.Policy.RefreshWindow = 0 // retention alone
	l.refresh.Pass(context.Background())
	if _, ok := f.record(old); ok {
		t.Fatal("a record unused for 169h (record_retention 168h) is still there")
	}
	for _, q := range []resolver.Query{recent, other} {
		if _, ok := f.record(q); !ok {
			t.Fatalf("record %s, used within record_retention, was deleted", Name(q))
		}
	}
	if got := testutil.ToFloat64(l.m.writes.WithLabelValues("deleted")); got != 1 {
		t.Fatalf("deleted = %v, want 1", got)
	}
}

func TestARetentionShorterThanTwoWindowsKeepsRecordsInUse(t *testing.T) {
	l := Limits{RefreshWindow: time.Hour, RecordRetention: 30 * time.Minute}
	if got := retentionOf(l); got != 2*time.Hour {
		t.Fatalf("retention %s with refresh_window 1h, want 2h (lastUsed may be a window old in use)", got)
	}
	if got := retentionOf(Limits{RecordRetention: 168 * time.Hour, RefreshWindow: time.Hour}); got != 168*time.Hour {
		t.Fatalf("retention %s, want 168h", got)
	}
}

// The leader confirms a record in use without writing it; the window's one
// lastUsed write carries that confirmation, so that kubectl's Confirmed
// column follows the refreshes (to within a window) at no extra write.
func TestTheWindowsUseWriteCarriesTheLeadersConfirmation(t *testing.T) {
	f := newFixture(t)
	l := f.leader()
	follower := f.store(nil)
	digest := f.reg.PushImage(t, "app:latest")
	q := f.admitted(l.store, "app", digest, 9*time.Second, time.Minute) // cache_ttl 10s: due
	l.refresh.Pass(context.Background())
	through := f.heartbeat().Spec.RenewTime.Time
	// A window later: last confirmed by a write long ago, last used over a
	// window (1h) ago but within the two the pass covers.
	f.age(q, 50*time.Minute, 90*time.Minute)
	f.seen(follower, q)
	eventually(t, "the follower hears the heartbeat", func() bool {
		s, ok := follower.Load(context.Background(), q, "team-a")
		return ok && !s.At.Before(through)
	})
	eventually(t, "the use is written", func() bool {
		ir, ok := f.record(q)
		return ok && ir.Status.LastUsed != nil && time.Since(ir.Status.LastUsed.Time) < 30*time.Minute
	})
	ir, _ := f.record(q)
	if got := ir.Status.ConfirmedAt.Time; got.Before(through.Add(-time.Second)) {
		t.Errorf("confirmedAt %s after the use's write, want the heartbeat's %s", got, through)
	}
}
