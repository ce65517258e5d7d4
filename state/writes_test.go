package state

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/image-pin/image-pin-webhook/api/v1alpha1"
)

// writesOf watches q's record from its current version and returns a
// function that writes a sentinel label and gives the writes seen before
// it: every write of the replicas made before the sentinel, at the API
// server.
func (f *fixture) writesOf(name string) func() []*v1alpha1.ImageResolution {
	t := f.t
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	wc, err := client.NewWithWatch(apiServer, client.Options{Scheme: scheme(t)})
	if err != nil {
		t.Fatal(err)
	}
	ir := &v1alpha1.ImageResolution{}
	if err := f.c.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: name}, ir); err != nil {
		t.Fatal(err)
	}
	w, err := wc.Watch(ctx, &v1alpha1.ImageResolutionList{}, client.InNamespace(f.ns),
		&client.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", name), Raw: &metav1.ListOptions{ResourceVersion: ir.ResourceVersion}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return func() []*v1alpha1.ImageResolution {
		t.Helper()
		cur := &v1alpha1.ImageResolution{}
		if err := f.c.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: name}, cur); err != nil {
			t.Fatal(err)
		}
		if cur.Labels == nil {
			cur.Labels = map[string]string{}
		}
		cur.Labels["test-sentinel"] = "1"
		if err := f.c.Update(ctx, cur); err != nil {
			t.Fatalf("writing the sentinel: %v", err)
		}
		var seen []*v1alpha1.ImageResolution
		for ev := range w.ResultChan() {
			got, ok := ev.Object.(*v1alpha1.ImageResolution)
			if !ok {
				t.Fatalf("the watch ended: %v", ev.Object)
			}
			if got.Labels["test-sentinel"] == "1" {
				return seen
			}
			if ev.Type == watch.Modified {
				seen = append(seen, got)
			}
		}
		t.Fatal("the watch ended before the sentinel")
		return nil
	}
}

func TestTwoReplicasUsesWithinOneWindowWriteLastUsedOnce(t *testing.T) {
	f := newFixture(t)
	ma, mb := newMetrics(), newMetrics()
	a, b := f.store(ma), f.store(mb)
	ctx := context.Background()
	q := f.query("shared", "latest", "team-a")
	first, err := a.Save(ctx, q, "team-a", nil, stored("sha256:"+strings.Repeat("1", 64)))
	if err != nil {
		t.Fatal(err)
	}
	f.age(q, 2*time.Hour, 2*time.Hour) // confirmed and used a window ago and more: both are due
	f.seen(a, q)
	f.seen(b, q)
	writes := f.writesOf(Name(q))

	// Both replicas' admissions in the same instant, each of them noting
	// the use and confirming the same digest, as an admission that looked
	// the image up again after cache_ttl does.
	start := make(chan struct{})
	var wg sync.WaitGroup
	for _, c := range []*Cluster{a, b} {
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				prev, ok := c.Load(ctx, q, "team-a")
				if !ok {
					t.Error("no record")
					return
				}
				again := stored(first.Digest)
				if _, err := c.Save(ctx, q, "team-a", &prev, again); err != nil {
					t.Error(err)
				}
			}()
		}
	}
	close(start)
	wg.Wait()
	used := func() float64 {
		return testutil.ToFloat64(ma.writes.WithLabelValues("used")) + testutil.ToFloat64(mb.writes.WithLabelValues("used")) +
			testutil.ToFloat64(ma.writes.WithLabelValues("updated")) + testutil.ToFloat64(mb.writes.WithLabelValues("updated"))
	}
	eventually(t, "the window's write", func() bool { return used() >= 1 })
	f.seen(a, q)
	f.seen(b, q)
	// Later uses within the window write nothing, on either replica and on
	// a third that has not written the record yet: the window's write is
	// the record's, whoever made it.
	third := f.store(newMetrics())
	f.seen(third, q)
	for _, c := range []*Cluster{a, b, third} {
		for range 100 {
			prev, _ := c.Load(ctx, q, "team-a")
			if _, err := c.Save(ctx, q, "team-a", &prev, stored(first.Digest)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, c := range []*Cluster{a, b, third} {
		eventually(t, "the uses' queue drained", func() bool { return len(c.touches) == 0 })
	}
	seen := writes()
	if len(seen) != 1 {
		t.Fatalf("%d writes of the record by two replicas' uses within one window, want 1", len(seen))
	}
	if w := seen[0]; w.Status.Digest != first.Digest || w.Status.LastUsed == nil || time.Since(w.Status.LastUsed.Time) > time.Minute {
		t.Fatalf("the window's write gives %s used at %v, want %s used now", w.Status.Digest, w.Status.LastUsed, first.Digest)
	}
	if got := used() + testutil.ToFloat64(third.metrics.writes.WithLabelValues("used")); got != 1 {
		t.Fatalf("the replicas count %v writes, want 1", got)
	}
	for _, m := range []*Metrics{ma, mb} {
		if got := testutil.ToFloat64(m.writes.WithLabelValues("error")); got != 0 {
			t.Fatalf("%v write errors: a lost race is a conflict, not an error", got)
		}
	}
}
