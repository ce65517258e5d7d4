package envtest

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/image-pin/image-pin-webhook/state"
	"github.com/image-pin/image-pin-webhook/test/cluster"
)

// Refresh ahead (issue 21): two replicas of the built binary with
// --state cluster elect a leader, which re-resolves the records in use
// before they are cache_ttl old, through a registry that takes 1.5s to
// answer every request. After the first admission of an image, no
// admission on either replica asks the registry (counted in
// image_pin_resolutions_total, not by the clock).

const refreshConfig = `registries:
- name: plain
  api_url: http://{{.Reg}}
  prefix: {{.Reg}}
- name: slow
  api_url: {{.Slow}}
  prefix: {{.SlowHost}}
policy:
  cache_ttl: 10s
  refresh_window: 5s
  record_retention: 15s
  resolve_timeout: {{.Timeout}}
`

// slowProxy forwards every request to a registry after delay, counting them.
type slowProxy struct {
	delay    time.Duration
	requests atomic.Int64
	next     http.Handler
}

func (p *slowProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.requests.Add(1)
	time.Sleep(p.delay) // the registry's slowness, not a wait of the test's
	p.next.ServeHTTP(w, r)
}

// envDuration reads a duration from the environment, else def.
func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, v, err)
	}
	return d
}

// counter sums a metric's series (by name and labels) over replicas.
func counter(t *testing.T, ws []*cluster.Webhook, prefix string) int {
	t.Helper()
	n := 0
	for _, w := range ws {
		n += replicaGauge(t, w, prefix)
	}
	return n
}

// TestRefreshAheadKeepsAdmissionsOffASlowRegistry is the issue's "Refresh
// ahead" measurement. IMAGE_PIN_REFRESH_RUN (default 24s) and
// IMAGE_PIN_REFRESH_EVERY (default 1s) set how long and how often the
// image is admitted; the run is 60s.
func TestRefreshAheadKeepsAdmissionsOffASlowRegistry(t *testing.T) {
	t.Parallel()
	run := envDuration(t, "IMAGE_PIN_REFRESH_RUN", 24*time.Second)
	every := envDuration(t, "IMAGE_PIN_REFRESH_EVERY", time.Second)
	e := newStateEnv(t)
	target, err := url.Parse("http://" + e.reg.Host)
	if err != nil {
		t.Fatal(err)
	}
	proxy := &slowProxy{delay: 1500 * time.Millisecond, next: httputil.NewSingleHostReverseProxy(target)}
	slow := httptest.NewServer(proxy)
	t.Cleanup(slow.Close)
	slowHost := strings.TrimPrefix(slow.URL, "http://")
	dir := t.TempDir()
	render := func(timeout string) {
		doc := strings.NewReplacer("{{.Reg}}", e.reg.Host, "{{.Slow}}", slow.URL, "{{.SlowHost}}", slowHost, "{{.Timeout}}", timeout).Replace(refreshConfig)
		if err := os.WriteFile(filepath.Join(dir, "refresh.yaml"), []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	render("8s")
	config := filepath.Join(dir, "refresh.yaml")
	a, _ := e.replica("a", config)
	b, _ := e.replica("b", config)
	replicas := []*cluster.Webhook{a, b}
	t.Cleanup(func() {
		if t.Failed() {
			for i, out := range e.outputs {
				lines := strings.Split(out.String(), "\n")
				t.Logf("replica %d printed (last 80 lines):\n%s", i, strings.Join(lines[max(0, len(lines)-80):], "\n"))
			}
		}
	})
	nsA, nsB := e.namespace("refresh-a", "a"), e.namespace("refresh-b", "b")
	e.await(nsA)
	e.await(nsB)

	repo, once := uniq("ahead"), uniq("once")
	first := push(t, e.reg, repo+":latest")
	push(t, e.reg, once+":latest")
	image, onceImage := slowHost+"/"+repo+":latest", slowHost+"/"+once+":latest"
	// Admitted once, then never again: retention deletes its record.
	if got, _, err := e.pod(nsA, onceImage, false); err != nil || !strings.Contains(got, "@sha256:") {
		t.Fatalf("the first admission of %s: %q, %v", onceImage, got, err)
	}
	if got, _, err := e.pod(nsA, image, false); err != nil || got != image+"@"+first {
		t.Fatalf("the first admission of %s: %q, %v; want %s", image, got, err, first)
	}
	const resolved = `image_pin_resolutions_total{registry="slow",result="resolved",strategy="digest"}`
	if n := counter(t, replicas, resolved); n != 2 {
		t.Fatalf("%d lookups for the first admissions of two images, want 2", n)
	}

	// Admitted every second on both replicas, for run.
	var slowest time.Duration
	admissions := 0
	for start := time.Now(); time.Since(start) < run; time.Sleep(every) {
		ns := []string{nsA, nsB}[admissions%2]
		began := time.Now()
		got, warn, err := e.pod(ns, image, false)
		slowest = max(slowest, time.Since(began))
		admissions++
		if err != nil || got != image+"@"+first || warn != "" {
			t.Fatalf("admission %d in %s: %q (%v; warnings %q), want %s", admissions, ns, got, err, warn, first)
		}
	}
	lookups := counter(t, replicas, resolved)
	refreshes := counter(t, replicas, `image_pin_refreshes_total{registry="slow",result="unchanged"}`)
	errors := counter(t, replicas, `image_pin_refreshes_total{registry="slow",result="error"}`)
	// The webhook's own time per resolution (the histogram), apart from
	// the API server's: answers over 100ms are lookups.
	over100ms := counter(t, replicas, `image_pin_resolve_duration_seconds_count{registry="slow",strategy="digest"}`) -
		counter(t, replicas, `image_pin_resolve_duration_seconds_bucket{registry="slow",strategy="digest",le="0.1"}`)
	t.Logf("refresh ahead: %d admissions over %s (one every %s, cache_ttl 10s, every registry request 1.5s late): %d of them looked up, slowest %s end to end (kubectl-equivalent create through the API server); %d resolutions over 100ms in the webhook (the first two admissions included); %d refreshes unchanged, %d errors, %d registry requests through the proxy",
		admissions, run, every, lookups-2, slowest.Round(time.Millisecond), over100ms, refreshes, errors, proxy.requests.Load())
	if lookups != 2 {
		t.Fatalf("%d admissions after the first ones asked the registry, want none", lookups-2)
	}
	if stale := counter(t, replicas, `image_pin_resolutions_total{registry="slow",result="stale",strategy="digest"}`); stale != 0 || errors != 0 {
		t.Fatalf("%d stale answers and %d refresh errors, want none", stale, errors)
	}
	// The record is refreshed about once per cache_ttl less the lead; at
	// least once per cache_ttl of the run, or an admission would have
	// looked up.
	if min := int(run / (10 * time.Second)); refreshes < min {
		t.Fatalf("%d refreshes in %s, want at least %d", refreshes, run, min)
	}

	// The tag moves: the leader finds it, records TagMoved, and the other
	// replica pins the new digest from its watch.
	moved := push(t, e.reg, repo+":latest")
	eventually(t, "a TagMoved Event on the record", func() bool {
		var evs corev1.EventList
		if err := e.c.List(ctx(t), &evs, client.InNamespace(e.stateNS)); err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs.Items {
			if ev.Reason == "TagMoved" && strings.Contains(ev.Message, moved) {
				return true
			}
		}
		return false
	})
	leader, follower, followerNS := a, b, nsB
	if replicaGauge(t, b, "image_pin_refreshes_total{") > 0 {
		leader, follower, followerNS = b, a, nsA
	}
	if replicaGauge(t, follower, "image_pin_refreshes_total{") != 0 || replicaGauge(t, leader, `image_pin_refreshes_total{registry="slow",result="moved"}`) != 1 {
		t.Fatal("want one leader that refreshed (and found the move once) and one follower that did not")
	}
	eventually(t, "the follower pins the moved digest", func() bool {
		got, _, err := e.pod(followerNS, image, true)
		return err == nil && got == image+"@"+moved
	})
	if got, _, err := e.pod(followerNS, image, false); err != nil || got != image+"@"+moved {
		t.Fatalf("the follower stored %q (%v), want %s", got, err, moved)
	}
	if recs := e.records(repo); len(recs) != 1 || recs[0].Status.Digest != moved || len(recs[0].Status.History) != 1 || recs[0].Status.History[0].Digest != first {
		t.Fatalf("records of %s: %+v, want one with %s and %s in its history", repo, recs, moved, first)
	}
	if lookups := counter(t, replicas, resolved); lookups != 2 {
		t.Fatalf("%d admissions asked the registry, want the first two only", lookups)
	}

	// The follower reloads its config like the leader does.
	reloads := replicaGauge(t, follower, `image_pin_config_reloads_total{result="success"}`)
	render("9s")
	eventually(t, "the follower reloads the config", func() bool {
		return replicaGauge(t, follower, `image_pin_config_reloads_total{result="success"}`) > reloads
	})

	// Unused for record_retention (15s): deleted by the leader.
	eventually(t, "the leader deletes the record unused for record_retention", func() bool { return len(e.records(once)) == 0 })
	// Unused for two refresh windows (10s): no longer refreshed. Two
	// passes of the leader (its heartbeat) after that leave the count as
	// it was.
	e.reg.Stop() // a refresh would now be an error
	eventually(t, "two refresh windows after the last use", func() bool {
		return time.Since(lastUse(t, e, repo)) > 2*5*time.Second
	})
	// A pass that began before then may still be refreshing: the first
	// pass that begins after it ends once that one has.
	after := time.Now()
	eventually(t, "a pass of the leader that began after", func() bool { return e.lastPass(t).After(after) })
	idle := replicaGauge(t, leader, "image_pin_refreshes_total{")
	for i := 0; i < 2; i++ {
		since := e.lastPass(t)
		eventually(t, "a pass of the leader", func() bool { return e.lastPass(t).After(since) })
	}
	if n := replicaGauge(t, leader, "image_pin_refreshes_total{"); n != idle {
		t.Fatalf("%d refreshes of a record unused for two refresh windows, want none", n-idle)
	}
	e.noWriteFailures()
}

// lastPass is when the leader's last refresh pass began, from its heartbeat.
func (e *stateEnv) lastPass(t *testing.T) time.Time {
	t.Helper()
	var l coordinationv1.Lease
	if err := e.c.Get(ctx(t), client.ObjectKey{Namespace: e.stateNS, Name: state.HeartbeatLease}, &l); err != nil {
		return time.Time{}
	}
	at, _ := time.Parse(time.RFC3339Nano, l.Annotations["image-pin.io/refresh-pass"])
	return at
}

// lastUse is the record's lastUsed, else its confirmation.
func lastUse(t *testing.T, e *stateEnv, repo string) time.Time {
	t.Helper()
	recs := e.records(repo)
	if len(recs) != 1 {
		return time.Time{}
	}
	if lu := recs[0].Status.LastUsed; lu != nil {
		return lu.Time
	}
	return recs[0].Status.ConfirmedAt.Time
}

// TestAFollowerTakesOverTheRefreshWhenTheLeaderStops: the leader releases
// its Lease when it stops (a rollout), and the other replica, which kept
// serving, starts refreshing the records in use.
func TestAFollowerTakesOverTheRefreshWhenTheLeaderStops(t *testing.T) {
	t.Parallel()
	e := newStateEnv(t)
	config := e.writeConfig(t.TempDir(), "takeover.yaml", "4s") // cache_ttl 4s; refresh_window 1h
	a, _ := e.replica("a", config)
	b, _ := e.replica("b", config)
	nsA, nsB := e.namespace("takeover-a", "a"), e.namespace("takeover-b", "b")
	e.await(nsA)
	e.await(nsB)
	repo := uniq("takeover")
	digest := push(t, e.reg, repo+":latest")
	image := e.reg.Host + "/" + repo + ":latest"
	for _, ns := range []string{nsA, nsB} {
		if got, _, err := e.pod(ns, image, false); err != nil || got != image+"@"+digest {
			t.Fatalf("in %s: %q, %v", ns, got, err)
		}
	}
	const refreshed = `image_pin_refreshes_total{registry="state plain",result="unchanged"}`
	var leader, follower *cluster.Webhook
	var followerNS string
	eventually(t, "a leader refreshes the record", func() bool {
		switch {
		case replicaGauge(t, a, refreshed) > 0:
			leader, follower, followerNS = a, b, nsB
		case replicaGauge(t, b, refreshed) > 0:
			leader, follower, followerNS = b, a, nsA
		}
		return leader != nil
	})
	if replicaGauge(t, follower, refreshed) != 0 {
		t.Fatal("both replicas refreshed")
	}
	leader.Stop(20 * time.Second)
	eventually(t, "the follower refreshes once the leader is gone", func() bool {
		if got, _, err := e.pod(followerNS, image, false); err != nil || got != image+"@"+digest {
			t.Fatalf("the follower stored %q (%v), want %s", got, err, digest)
		}
		return replicaGauge(t, follower, refreshed) > 0
	})
	e.noWriteFailures()
}
