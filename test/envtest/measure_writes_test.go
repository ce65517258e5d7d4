package envtest

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/image-pin/image-pin-webhook/api/v1alpha1"
	"github.com/image-pin/image-pin-webhook/test/cluster"
)

// The write bound of the records (interface.md, "Resolution records"):
// one API write per new answer (a new query or a moved tag) plus at most
// one per record per refresh_window, whatever the number of admissions.
// The writes are counted at the API server with a watch on the state
// namespace, each MODIFIED event told apart by whether the digest changed.
//
// TestRecordWritesStayWithinTheBound is the quick variant (part of the
// e2e suite): 1,000 admissions, no wall-clock wait. TestMeasureRecordWrites
// is the measurement in docs/performance.md: IMAGE_PIN_MEASURE=1, 10,000
// admissions paced over IMAGE_PIN_MEASURE_DURATION (3m) with a 1m
// refresh_window and tags moved half way.

// writeCounts are the writes a watch saw, by kind.
type writeCounts struct {
	added         int
	digestChanged int // MODIFIED with another status.digest: a new answer
	sameDigest    int // MODIFIED with the same digest: a confirmation or a lastUsed
	confirmed     int // of sameDigest, those that moved confirmedAt
	deleted       int
}

// writeCounter counts what a watch on the records sees.
type writeCounter struct {
	mu        sync.Mutex
	last      map[string]v1alpha1.ImageResolution
	counts    writeCounts
	lastAt    time.Time              // when the last event was seen
	perRecord map[string][]time.Time // when each sameDigest write was seen, by record
}

func (w *writeCounter) total() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	c := w.counts
	return c.added + c.digestChanged + c.sameDigest + c.deleted
}

func (w *writeCounter) snapshot() writeCounts {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.counts
}

// maxPerWindow is the most same-digest writes one record had within
// any interval of length window.
func (w *writeCounter) maxPerWindow(window time.Duration) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := 0
	for _, at := range w.perRecord {
		for i := range at {
			n := 0
			for j := i; j < len(at) && at[j].Sub(at[i]) < window; j++ {
				n++
			}
			m = max(m, n)
		}
	}
	return m
}

// countWrites watches the records of ns from now until the test ends.
func countWrites(t *testing.T, ns string) *writeCounter {
	t.Helper()
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = v1alpha1.AddToScheme(scheme)
	c, err := client.NewWithWatch(s.restCfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(context.Background())
	w, err := c.Watch(wctx, &v1alpha1.ImageResolutionList{}, client.InNamespace(ns))
	if err != nil {
		cancel()
		t.Fatalf("watching the records of %s: %v", ns, err)
	}
	wc := &writeCounter{last: map[string]v1alpha1.ImageResolution{}, perRecord: map[string][]time.Time{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			ir, ok := ev.Object.(*v1alpha1.ImageResolution)
			if !ok {
				continue // a watch error: the test sees the counts fall short
			}
			wc.mu.Lock()
			switch ev.Type {
			case watch.Added:
				wc.counts.added++
			case watch.Modified:
				prev := wc.last[ir.Name].Status
				if prev.Digest != ir.Status.Digest {
					wc.counts.digestChanged++
				} else {
					wc.counts.sameDigest++
					if !prev.ConfirmedAt.Equal(&ir.Status.ConfirmedAt) {
						wc.counts.confirmed++
					}
					wc.perRecord[ir.Name] = append(wc.perRecord[ir.Name], time.Now())
				}
			case watch.Deleted:
				wc.counts.deleted++
			}
			wc.last[ir.Name] = *ir
			wc.lastAt = time.Now()
			wc.mu.Unlock()
		}
	}()
	t.Cleanup(func() { w.Stop(); cancel(); <-done })
	return wc
}

// admitter posts AdmissionReviews of Pods straight to a replica over
// HTTPS, as the API server does, without storing a Pod per admission.
type admitter struct {
	http *http.Client
}

func newAdmitter() *admitter {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.authority.Pool()}, MaxIdleConnsPerHost: 16}
	return &admitter{http: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

var pinnedDigest = regexp.MustCompile(`sha256:[0-9a-f]{64}`)

// admit sends one Pod CREATE of image in ns to w and returns the digest
// the patch pins.
func (a *admitter) admit(w *cluster.Webhook, uid int, ns, image string) (string, error) {
	pod := map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": fmt.Sprintf("p-%d", uid), "namespace": ns},
		"spec": map[string]any{"containers": []map[string]string{{"name": "c", "image": image}}}}
	body, _ := json.Marshal(map[string]any{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": map[string]any{
		"uid": fmt.Sprintf("00000000-0000-0000-0000-%012d", uid), "kind": map[string]string{"group": "", "version": "v1", "kind": "Pod"},
		"resource": map[string]string{"group": "", "version": "v1", "resource": "pods"}, "namespace": ns, "name": fmt.Sprintf("p-%d", uid),
		"operation": "CREATE", "object": pod, "dryRun": false}})
	resp, err := a.http.Post(w.URL(), "application/json", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	var rev struct {
		Response struct {
			Allowed bool   `json:"allowed"`
			Patch   []byte `json:"patch"`
		} `json:"response"`
	}
	if err := json.Unmarshal(b, &rev); err != nil {
		return "", fmt.Errorf("answer %s: %w", b, err)
	}
	d := pinnedDigest.FindString(string(rev.Response.Patch))
	if !rev.Response.Allowed || d == "" {
		return "", fmt.Errorf("not pinned: %s", b)
	}
	return d, nil
}

// writesRun is one run of the write bound.
type writesRun struct {
	admissions, images, clients int
	replicas                    int // webhook processes; 2 when 0
	cacheTTL, refreshWindow     time.Duration
	duration                    time.Duration // admissions paced evenly over it; 0: as fast as they go
	moves                       int           // tags moved half way through
}

type writesResult struct {
	writes              writeCounts
	elapsed             time.Duration
	newAnswers, windows int
	bound               int
	maxPerWindow        int            // same-digest writes of one record within one refresh_window, at most
	metricWrites        map[string]int // image_pin_record_writes_total by result, both replicas
}

func (r writesRun) run(t *testing.T) writesResult {
	t.Helper()
	e := newStateEnv(t)
	wc := countWrites(t, e.stateNS)
	cfg := fmt.Sprintf("registries:\n- name: writes\n  api_url: http://%s\n  prefix: %s\n  limit: 1000\npolicy:\n  cache_ttl: %s\n  refresh_window: %s\n  resolve_timeout: 8s\n",
		e.reg.Host, e.reg.Host, r.cacheTTL, r.refreshWindow)
	config := filepath.Join(t.TempDir(), "writes.yaml")
	if err := os.WriteFile(config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if r.replicas == 0 {
		r.replicas = 2
	}
	var replicas []*cluster.Webhook
	var names []string
	for i := range r.replicas {
		names = append(names, fmt.Sprintf("r%d", i))
		w, _ := e.replica(names[i], config)
		replicas = append(replicas, w)
	}
	// Every replica is sent this namespace's reviews: its namespace gate
	// must find it opted in.
	ns := e.namespace("writes", names...)
	repo := uniq("writes")
	imgs := make([]string, r.images)
	for i := range imgs {
		push(t, e.reg, fmt.Sprintf("%s/app%d:1", repo, i))
		imgs[i] = fmt.Sprintf("%s/%s/app%d:1", e.reg.Host, repo, i)
	}

	ad := newAdmitter()
	var next, failures atomic.Int64
	var firstErr atomic.Value
	var moveOnce sync.Once
	start := time.Now()
	var wg sync.WaitGroup
	for range r.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= r.admissions {
					return
				}
				if r.duration > 0 {
					time.Sleep(time.Until(start.Add(r.duration * time.Duration(i) / time.Duration(r.admissions))))
				}
				if r.moves > 0 && i >= r.admissions/2 {
					moveOnce.Do(func() {
						for m := range r.moves {
							if _, err := e.reg.Push(fmt.Sprintf("%s/app%d:1", repo, m)); err != nil {
								firstErr.CompareAndSwap(nil, err)
							}
						}
					})
				}
				// Each image goes to one replica, then the other, round by round.
				replica := replicas[(i+i/len(imgs))%len(replicas)]
				if _, err := ad.admit(replica, i, ns, imgs[i%len(imgs)]); err != nil {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if f := failures.Load(); f > 0 {
		t.Fatalf("%d of %d admissions failed: %v", f, r.admissions, firstErr.Load())
	}
	metricWrites := func() map[string]int {
		m := map[string]int{}
		for _, w := range replicas {
			for _, res := range []string{"created", "updated", "used", "conflict", "error", "memory_only"} {
				m[res] += replicaGauge(t, w, fmt.Sprintf(`image_pin_record_writes_total{result="%s"}`, res))
			}
		}
		return m
	}
	// The lastUsed writes are off the admission path: wait until neither
	// the watch nor the replicas' counters move. The counters may count a
	// few more than the watch sees: an update that changes nothing (the
	// same whole-second times) is no write at the API server and no event.
	for stable, last := 0, ""; stable < 3; time.Sleep(time.Second) {
		now := fmt.Sprint(wc.total(), metricWrites())
		if now == last {
			stable++
		} else {
			last, stable = now, 0
		}
	}
	res := writesResult{writes: wc.snapshot(), elapsed: elapsed, metricWrites: metricWrites(), maxPerWindow: wc.maxPerWindow(r.refreshWindow)}
	res.newAnswers = r.images + r.moves
	// The windows the writes fall in: from the first admission to the last
	// write the watch saw (lastUsed is written after the admissions end).
	wc.mu.Lock()
	span := wc.lastAt.Sub(start)
	wc.mu.Unlock()
	res.windows = int(span/r.refreshWindow) + 1
	res.bound = res.newAnswers + r.images*res.windows
	e.noWriteFailures()
	return res
}

// check asserts the bound, split as the contract splits it.
func (res writesResult) check(t *testing.T, r writesRun) {
	t.Helper()
	w := res.writes
	if w.added != r.images {
		t.Errorf("%d records created for %d images, want one each", w.added, r.images)
	}
	if w.digestChanged > r.moves {
		t.Errorf("%d writes changed a digest, want at most one per moved tag (%d)", w.digestChanged, r.moves)
	}
	if limit := r.images * res.windows; w.sameDigest > limit {
		t.Errorf("%d writes kept the digest (confirmations and lastUsed), want at most one per record per refresh_window: %d records × %d windows = %d",
			w.sameDigest, r.images, res.windows, limit)
	}
	if w.deleted != 0 {
		t.Errorf("%d records deleted during the run", w.deleted)
	}
}

func TestRecordWritesStayWithinTheBound(t *testing.T) {
	r := writesRun{admissions: 1000, images: 50, clients: 8, cacheTTL: 10 * time.Minute, refreshWindow: time.Hour}
	res := r.run(t)
	res.check(t, r)
	t.Logf("%d admissions of %d images through two replicas in %s: %d creates, %d digest changes, %d other writes (bound %d); replica counters %v",
		r.admissions, r.images, res.elapsed.Round(time.Millisecond), res.writes.added, res.writes.digestChanged, res.writes.sameDigest, res.bound, res.metricWrites)
}

func TestMeasureRecordWrites(t *testing.T) {
	if os.Getenv("IMAGE_PIN_MEASURE") != "1" {
		t.Skip("a measurement of minutes: IMAGE_PIN_MEASURE=1 runs it")
	}
	dur := 3 * time.Minute
	if d, err := time.ParseDuration(os.Getenv("IMAGE_PIN_MEASURE_DURATION")); err == nil {
		dur = d
	}
	r := writesRun{admissions: 10000, images: 50, clients: 8, cacheTTL: 30 * time.Second, refreshWindow: time.Minute, duration: dur, moves: 5, replicas: 2}
	if v := os.Getenv("IMAGE_PIN_MEASURE_REPLICAS"); v != "" {
		fmt.Sscan(v, &r.replicas)
	}
	res := r.run(t)
	w := res.writes
	fmt.Printf("record writes: %d admissions of %d images through %d replicas over %s (cache_ttl %s, refresh_window %s, %d tags moved half way)\n",
		r.admissions, r.images, r.replicas, res.elapsed.Round(time.Second), r.cacheTTL, r.refreshWindow, r.moves)
	fmt.Printf("  at the API server (watch): %d created, %d digest changed, %d same digest (%d confirmations, %d lastUsed only; at most %d on one record within one refresh_window), %d deleted: %d writes\n",
		w.added, w.digestChanged, w.sameDigest, w.confirmed, w.sameDigest-w.confirmed, res.maxPerWindow, w.deleted, w.added+w.digestChanged+w.sameDigest+w.deleted)
	fmt.Printf("  bound: %d new answers + %d records × %d windows = %d\n", res.newAnswers, r.images, res.windows, res.bound)
	fmt.Printf("  image_pin_record_writes_total, all replicas: %v\n", res.metricWrites)
	res.check(t, r)
}
