package envtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/image-pin/image-pin-webhook/test/cluster"
)

// The bounds, end to end: the built binary, posted to over HTTPS,
// scraped on /metrics. Each test runs a webhook of its own with its own
// config, so that its metrics and rate limits are its own.

// startMetered starts a webhook with the config doc, /metrics on, debug
// logging and env added to its environment.
func startMetered(t *testing.T, doc string, env ...string) *process {
	t.Helper()
	return startProcess(t, doc, cluster.WebhookOptions{Kubeconfig: s.kubecfg, Metrics: true,
		Args: []string{"--zap-log-level", "debug"}, Env: env})
}

// review is an AdmissionReview for a Pod of one container per image, as
// the API server would send it, or as any pod that reaches the port could.
func review(ns, kind, op string, images ...string) []byte {
	var containers []map[string]string
	for i, img := range images {
		containers = append(containers, map[string]string{"name": fmt.Sprintf("c%d", i), "image": img})
	}
	b, _ := json.Marshal(map[string]any{
		"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
		"request": map[string]any{
			"uid": fmt.Sprintf("u%d", rand.Int64()), "kind": map[string]string{"version": "v1", "kind": kind},
			"resource": map[string]string{"version": "v1", "resource": "pods"}, "operation": op, "namespace": ns,
			"object": map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]string{"name": "p", "namespace": ns},
				"spec": map[string]any{"containers": containers}},
		},
	})
	return b
}

// post sends body to the admission port and returns the response and the
// raw text of the answer.
func (p *process) post(t *testing.T, body []byte) (*admissionv1.AdmissionResponse, string) {
	t.Helper()
	r, raw, err := p.send(body)
	if err != nil {
		t.Fatal(err)
	}
	return r, raw
}

// send is post for goroutines other than the test's, which must not call
// t.Fatal: it returns what went wrong instead.
func (p *process) send(body []byte) (*admissionv1.AdmissionResponse, string, error) {
	resp, err := p.client.Post(p.URL(), "application/json", bytes.NewReader(body))
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var r admissionv1.AdmissionReview
	if err := json.Unmarshal(raw, &r); err != nil || r.Response == nil {
		return nil, string(raw), fmt.Errorf("not an AdmissionReview (%v): %s", err, raw)
	}
	return r.Response, string(raw), nil
}

// scrape returns the text of p's /metrics.
func (p *process) scrape(t *testing.T) string {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", p.Metrics))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// series returns the lines of metric name (one per series) in text.
func series(text, name string) []string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, name+"{") || strings.HasPrefix(line, name+" ") {
			out = append(out, line)
		}
	}
	return out
}

// gauge returns the value of the unlabelled metric name in text.
func gauge(t *testing.T, text, name string) float64 {
	t.Helper()
	for _, line := range series(text, name) {
		var v float64
		if _, err := fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v); err == nil {
			return v
		}
	}
	t.Fatalf("/metrics has no %s", name)
	return 0
}

func TestACredentialScriptsStderrReachesNoWarningDenialOrMetric(t *testing.T) {
	t.Parallel()
	optInNamed(t, "team-a", "team-b")
	const secret = "e2e-Script-S3cret-never-shown"
	dir := t.TempDir()
	script := filepath.Join(dir, "login.sh")
	// What a verbose login script does: trace its commands, print the
	// credential on stderr, then fail.
	body := fmt.Sprintf("#!/bin/sh\nset -x\nTOKEN=%s\necho \"e2e-user:$TOKEN\" >&2\necho \"AWS_SECRET_ACCESS_KEY=$TOKEN\" >&2\nexit 3\n", secret)
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	p := startMetered(t, fmt.Sprintf(`registries:
- name: script warns
  api_url: http://%[1]s
  prefix: %[1]s/script-warn
  credentials: ext:%[2]s
  on_error: ignore
- name: script denies
  api_url: http://%[1]s
  prefix: %[1]s/script-deny
  credentials: ext:%[2]s
  on_error: fail
`, s.tokenReg.Host, script))

	const want = "the credential script failed (exit 3)"
	r, raw := p.post(t, review("team-a", "Pod", "CREATE", s.tokenReg.Host+"/script-warn/app:1"))
	if !r.Allowed || !strings.Contains(strings.Join(r.Warnings, "\n"), want) {
		t.Errorf("under on_error: ignore, want an admission warned %q, got allowed=%v warnings %q", want, r.Allowed, r.Warnings)
	}
	if strings.Contains(raw, secret) {
		t.Errorf("the warning holds the script's secret")
	}
	r, raw = p.post(t, review("team-b", "Pod", "CREATE", s.tokenReg.Host+"/script-deny/app:1"))
	if r.Allowed || r.Result == nil || !strings.Contains(r.Result.Message, want) {
		t.Errorf("under on_error: fail, want a denial saying %q, got allowed=%v result %+v", want, r.Allowed, r.Result)
	}
	if strings.Contains(raw, secret) {
		t.Errorf("the denial holds the script's secret")
	}
	if strings.Contains(p.scrape(t), secret) {
		t.Errorf("/metrics holds the script's secret")
	}
	// The debug log gets the stderr, redacted (waitForLog fails the test
	// if it never does).
	if log := p.waitForLog(t, "credential script stderr"); strings.Contains(log, secret) {
		t.Errorf("the webhook's log holds the script's secret")
	}
}

func TestForgedReviewsOnTheAdmissionPortLeaveTheAdmissionMetricBounded(t *testing.T) {
	t.Parallel()
	repo := uniq("forged")
	push(t, s.plain, repo+":1")
	p := startMetered(t, fmt.Sprintf("registries:\n- name: plain\n  api_url: http://%[1]s\n  prefix: %[1]s\n", s.plain.Host))
	ops := []string{"CREATE", "UPDATE"}
	for i := 0; i < 300; i++ {
		kind, op := fmt.Sprintf("Forged%06d", rand.IntN(1_000_000)), fmt.Sprintf("OP%06d", rand.IntN(1_000_000))
		if i%3 == 0 {
			kind, op = "Pod", ops[i%2] // some real ones among them
		}
		ns := fmt.Sprintf("forged-%06d", rand.IntN(1_000_000))
		p.post(t, review(ns, kind, op, s.plain.Host+"/"+repo+":1"))
	}
	got := series(p.scrape(t), "image_pin_admissions_total")
	// kind {Pod, other} x operation {CREATE, UPDATE, other} x outcome: a
	// handful, whatever was posted.
	if len(got) == 0 || len(got) > 12 {
		t.Fatalf("image_pin_admissions_total has %d series after 300 forged reviews:\n%s", len(got), strings.Join(got, "\n"))
	}
	for _, line := range got {
		if strings.Contains(line, `"Forged`) || strings.Contains(line, `"OP`) {
			t.Errorf("a forged label value made a series: %s", line)
		}
	}
	t.Logf("%d series after 300 reviews:\n%s", len(got), strings.Join(got, "\n"))
}

func TestNewestBuildOnThousandsOfTagsStaysBoundedAndLeavesAnotherNamespacesLookupOnTime(t *testing.T) {
	t.Parallel()
	optInNamed(t, "tenant-b-small", "tenant-a-0", "tenant-a-1", "tenant-a-2", "tenant-a-3")
	const tags = 3000
	big, small := "newest/"+uniq("big"), "newest/"+uniq("small")
	push(t, s.tlsReg, big+":0")
	desc, err := s.tlsReg.Get(big + ":0")
	if err != nil {
		t.Fatal(err)
	}
	// One manifest, many tags, written as the registry stores them.
	start := time.Now()
	names := make([]string, tags)
	for i := range names {
		names[i] = fmt.Sprintf("b%05d", i+1)
	}
	if err := s.tlsReg.TagOnDisk(big, desc, names...); err != nil {
		t.Fatal(err)
	}
	t.Logf("tagged %d tags in %v", tags, time.Since(start).Round(time.Millisecond))
	var smallDigests []string
	for i := 0; i < 12; i++ {
		smallDigests = append(smallDigests, push(t, s.tlsReg, fmt.Sprintf("%s:%d", small, i)))
	}

	// One entry for both tenants, so that they share its rate limit (20/s);
	// newest-build may read every one of the tags.
	p := startMetered(t, fmt.Sprintf(`registries:
- name: shared
  api_url: https://%[1]s
  prefix: %[1]s/newest
  ca_file: %[2]s
  credentials: env:E2E_BOUNDS_CREDS
  namespaces: ["tenant-*"]
policy:
  cache_ttl: 0s
  max_candidate_tags: 5000
  images:
  - prefix: %[1]s/%[3]s
    strategy: newest-build
`, s.tlsReg.Host, filepath.Join(s.dir, "ca.pem"), big), "E2E_BOUNDS_CREDS="+regUser+":"+regPass)

	lookup := func(i int) time.Duration {
		t.Helper()
		begin := time.Now()
		r, _ := p.post(t, review("tenant-b-small", "Pod", "CREATE", fmt.Sprintf("%s/%s:%d", s.tlsReg.Host, small, i)))
		took := time.Since(begin)
		if !r.Allowed || len(r.Patch) == 0 || !strings.Contains(string(r.Patch), smallDigests[i]) {
			t.Fatalf("tenant-b's digest lookup of %s:%d was not pinned: allowed=%v warnings %q patch %s", small, i, r.Allowed, r.Warnings, r.Patch)
		}
		return took
	}
	// Normal time: credentials and the ping are warmed by the first lookup.
	lookup(0)
	var normal time.Duration
	for i := 1; i <= 3; i++ {
		normal += lookup(i)
	}
	normal /= 3
	idle := p.scrape(t)
	baseGoroutines, baseRSS := gauge(t, idle, "go_goroutines"), gauge(t, idle, "process_resident_memory_bytes")

	// tenant-a: 4 reviews of 10 containers each, newest-build over the big
	// repository, again and again while tenant-b looks up.
	stop := make(chan struct{})
	var load sync.WaitGroup
	var newestAnswers atomic.Int64
	var lastNewest, badNewest, firstWarning atomic.Value
	for w := 0; w < 4; w++ {
		load.Add(1)
		go func(w int) {
			defer load.Done()
			images := make([]string, 10)
			for i := range images {
				images[i] = fmt.Sprintf("%s/%s:b%05d", s.tlsReg.Host, big, i+1)
			}
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := p.client.Post(p.URL(), "application/json", bytes.NewReader(review(fmt.Sprintf("tenant-a-%d", w), "Pod", "CREATE", images...)))
				if err == nil {
					var r admissionv1.AdmissionReview
					err := json.NewDecoder(resp.Body).Decode(&r)
					resp.Body.Close()
					newestAnswers.Add(1)
					if err != nil || r.Response == nil {
						badNewest.Store(fmt.Sprintf("not an AdmissionReview: %v", err))
						continue
					}
					var ops []struct{ Path, Value any }
					_ = json.Unmarshal(r.Response.Patch, &ops)
					pinned := false
					for _, op := range ops {
						if path, _ := op.Path.(string); strings.HasSuffix(path, "/image") {
							pinned = true
							// Every tag has the same build date; the greatest tag wins.
							if v, _ := op.Value.(string); !strings.Contains(v, fmt.Sprintf(":b%05d@", tags)) {
								badNewest.Store(fmt.Sprintf("pinned to a tag that is not the newest: %s", v))
							}
						}
					}
					if pinned {
						lastNewest.Store("pinned to the newest")
					} else {
						lastNewest.Store(strings.Join(r.Response.Warnings, "\n"))
					}
					if ws := r.Response.Warnings; len(ws) > 0 {
						firstWarning.Store(ws[0])
					}
				}
			}
		}(w)
	}
	var peakGoroutines, peakRSS, peakHeap float64
	sample := func() {
		m := p.scrape(t)
		peakGoroutines = max(peakGoroutines, gauge(t, m, "go_goroutines"))
		peakRSS = max(peakRSS, gauge(t, m, "process_resident_memory_bytes"))
		peakHeap = max(peakHeap, gauge(t, m, "go_memstats_heap_inuse_bytes"))
	}
	var busy []time.Duration
	for i := 4; i < 12; i++ {
		for j := 0; j < 5; j++ {
			sample()
			time.Sleep(100 * time.Millisecond)
		}
		busy = append(busy, lookup(i))
	}
	close(stop)
	load.Wait()
	// The pool's goroutines end as their lookups do: wait for that (the
	// bound only ends a broken run), then read what is left.
	stopped := time.Now()
	after := p.scrape(t)
	for deadline := stopped.Add(60 * time.Second); gauge(t, after, "go_goroutines") > baseGoroutines+50 && time.Now().Before(deadline); after = p.scrape(t) {
		time.Sleep(100 * time.Millisecond)
	}
	settled := time.Since(stopped).Round(100 * time.Millisecond)
	afterGoroutines, afterRSS := gauge(t, after, "go_goroutines"), gauge(t, after, "process_resident_memory_bytes")

	var worst time.Duration
	for _, d := range busy {
		worst = max(worst, d)
	}
	t.Logf("tenant-b digest lookup: normal %v (mean of 3), under tenant-a's newest-build %v (worst %v)", normal.Round(time.Millisecond), busy, worst.Round(time.Millisecond))
	t.Logf("tenant-a's newest-build warning (1 of 10): %v; registry requests made: %.0f", firstWarning.Load(), sum(series(after, "image_pin_registry_requests_total")))
	t.Logf("goroutines: idle %.0f, peak %.0f, after %.0f (%v after the load stopped); RSS MiB: idle %.1f, peak %.1f, after %.1f; peak heap in use %.1f MiB; %d newest-build admissions answered",
		baseGoroutines, peakGoroutines, afterGoroutines, settled, baseRSS/(1<<20), peakRSS/(1<<20), afterRSS/(1<<20), peakHeap/(1<<20), newestAnswers.Load())

	if bad := badNewest.Load(); bad != nil {
		t.Errorf("tenant-a's newest-build: %v", bad)
	}
	// Under this load the budget may also run out while the tags are still
	// being listed: a deadline error (the listing's own: context deadline
	// exceeded, on a busy machine), which is fine too. What must never
	// happen (badNewest) is a pin to an older tag.
	if last, _ := lastNewest.Load().(string); last != "pinned to the newest" && !strings.Contains(last, "allow_tags") &&
		!strings.Contains(last, "past the deadline") && !strings.Contains(last, "in time") && !strings.Contains(last, "context deadline exceeded") {
		t.Errorf("tenant-a's newest-build was neither pinned to the newest tag nor refused naming allow_tags or the deadline: %q", last)
	}
	if bound := max(5*normal, 2*time.Second); worst > bound {
		t.Errorf("tenant-b's digest lookup took %v under tenant-a's load, past %v (normal %v)", worst, bound, normal)
	}
	if peakGoroutines > baseGoroutines+1000 {
		t.Errorf("goroutines peaked at %.0f (idle %.0f): not bounded by the worker pool", peakGoroutines, baseGoroutines)
	}
	if peakRSS > 200<<20 {
		t.Errorf("resident memory peaked at %.0f MiB, near the chart's 256Mi limit", peakRSS/(1<<20))
	}
	if afterGoroutines > baseGoroutines+50 {
		t.Errorf("%.0f goroutines %v after the load stopped (idle %.0f)", afterGoroutines, settled, baseGoroutines)
	}
}

// sum adds up the values of the series lines.
func sum(lines []string) float64 {
	total := 0.0
	for _, line := range lines {
		var v float64
		if _, err := fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v); err == nil {
			total += v
		}
	}
	return total
}
