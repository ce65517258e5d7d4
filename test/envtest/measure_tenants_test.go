package envtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	admissionv1 "k8s.io/api/admission/v1"

	"github.com/image-pin/image-pin-webhook/test/cluster"
)

// The Measure section of the tenant bounds (issue 20), with the built
// binary against distribution's registry. What can be asserted as counts
// runs always; what only gives numbers (and costs minutes) runs with
// IMAGE_PIN_MEASURE=1. Numbers go to the test log and docs/reliability.md.

func measuring(t *testing.T) {
	t.Helper()
	if os.Getenv("IMAGE_PIN_MEASURE") != "1" {
		t.Skip("a measurement: set IMAGE_PIN_MEASURE=1")
	}
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's times: 100 on
// every Linux architecture Go builds for.
const clockTicks = 100

// cpuTime is the CPU the process has used (utime + stime), from /proc.
func cpuTime(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// The fields after the command name (which may hold spaces) in ")".
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / clockTicks
}

// memory is a /proc/<pid>/status field in KiB (VmHWM: peak RSS, VmRSS).
func memory(t *testing.T, pid int, field string) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	t.Fatalf("/proc/%d/status has no %s", pid, field)
	return 0
}

// annotatedReview is review with annotations on the Pod.
func annotatedReview(ns string, annotations map[string]string, images ...string) []byte {
	var r map[string]any
	_ = json.Unmarshal(review(ns, "Pod", "CREATE", images...), &r)
	meta := r["request"].(map[string]any)["object"].(map[string]any)["metadata"].(map[string]any)
	meta["annotations"] = annotations
	b, _ := json.Marshal(r)
	return b
}

// putTags tags the manifest of repo:0 as repo:<prefix><i> for i < n, 8 PUTs at a time.
func putTags(t *testing.T, reg *cluster.Registry, repo, prefix string, n int) {
	t.Helper()
	desc, err := reg.Get(repo + ":0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var failed atomic.Value
	next := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := reg.PutManifest(fmt.Sprintf("%s:%s%d", repo, prefix, i), desc); err != nil {
					failed.Store(err)
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatal(err)
	}
}

// The 249 KiB of ignore-tags globs over 1,100 tags once took 1m6s
// of CPU against a 500 ms deadline; it is now refused after one length
// check. Always: the answer names the annotation and its bound, and no
// registry request is made. Measured: the CPU the webhook spent on it.
func TestMeasureA249KiBIgnoreTagsAnnotationIsAnsweredByItsDeadline(t *testing.T) {
	t.Parallel()
	repo := uniq("measure/ignore")
	push(t, s.plain, repo+":0")
	if os.Getenv("IMAGE_PIN_MEASURE") == "1" {
		putTags(t, s.plain, repo, "1.0.", 1100)
	}
	p := startMetered(t, fmt.Sprintf(`registries:
- name: plain
  api_url: %[1]s
  prefix: %[2]s
  limit: 100000
policy:
  resolve_timeout: 500ms
  images:
  - prefix: %[2]s/%[3]s
    strategy: semver
    constraint: ">=1"
`, s.plain.URL, s.plain.Host, repo))
	var globs []string
	for i := 0; len(strings.Join(globs, ",")) < 249<<10; i++ {
		globs = append(globs, fmt.Sprintf("*-rc%d*", i))
	}
	ns := uniq("tenant-a")
	optInNamed(t, ns)
	body := annotatedReview(ns, map[string]string{"image-pin.io/ignore-tags": strings.Join(globs, ",")}, s.plain.Host+"/"+repo+":0")
	pid := p.Cmd.Process.Pid
	requests := sum(series(p.scrape(t), "image_pin_registry_requests_total"))
	before := cpuTime(t, pid)
	start := time.Now()
	r, _ := p.post(t, body)
	took := time.Since(start)
	used := cpuTime(t, pid) - before
	answer := strings.Join(r.Warnings, "\n")
	if r.Result != nil {
		answer += r.Result.Message
	}
	if !strings.Contains(answer, "ignore-tags") || !strings.Contains(answer, "at most 1024") {
		t.Errorf("the answer %q does not name ignore-tags and its bound of 1024 bytes", answer)
	}
	if n := sum(series(p.scrape(t), "image_pin_registry_requests_total")); n != requests {
		t.Errorf("%v registry requests for a refused annotation, want none", n-requests)
	}
	t.Logf("249 KiB of ignore-tags (%d globs): answered in %v (deadline 500ms), webhook CPU %v by the answer (utime+stime from /proc/%d/stat)", len(globs), took.Round(time.Millisecond), used, pid)
	if os.Getenv("IMAGE_PIN_MEASURE") == "1" {
		// A lookup may go on after its admission was answered: measure
		// until the process's CPU stops growing (a second without a tick).
		for last := time.Duration(-1); ; {
			now := cpuTime(t, pid)
			if now == last {
				break
			}
			last = now
			time.Sleep(time.Second)
		}
		t.Logf("webhook CPU for the admission once idle again: %v", cpuTime(t, pid)-before)
	}
}

// A real 192 MiB config once cost 914 MiB allocated. One 192 MiB config
// blob (an image config, padded with a label) is written once into
// distribution's storage and linked into 32 repositories, so it costs 192
// MiB of disk and is removed at the end. Always, in one admission of a Pod
// of 32 containers in an opted-in namespace (each its own newest-build
// lookup, 8s deadline):
//   - honest: each manifest declares the config's real size; each lookup is
//     refused naming the 4 MiB cap, before its deadline;
//   - lying: each manifest declares 323 bytes for the same blob (a PUT
//     distribution accepts: it checks that the blob is in the repository,
//     not its size), so the registry itself sends 192 MiB, with that
//     Content-Length, to a reader told 323: each is cut at the declared size.
//
// Logged: the webhook's peak RSS (VmHWM) before and after, and its CPU.
func TestMeasure32NewestBuildLookupsOverConfigsOf192MiBStayBounded(t *testing.T) {
	t.Parallel()
	const size = 192 << 20
	cfg, n, err := s.plain.BlobOnDisk(paddedConfig(size))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.plain.RemoveBlobOnDisk(cfg); err != nil {
			t.Error(err)
		}
	})
	layer, ln, err := s.plain.BlobOnDisk(strings.NewReader("a layer the webhook never reads"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name     string
		declared int64
		want     string
	}{
		{"honest", n, "more than 4 MiB"},
		{"lying", 323, "larger than the 323 bytes its manifest declares"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			base := uniq("measure/huge-" + c.name)
			var images []string
			for i := range 32 {
				repo := fmt.Sprintf("%s-%d", base, i)
				for _, b := range []v1.Hash{cfg, layer} {
					if err := s.plain.LinkBlobOnDisk(repo, b); err != nil {
						t.Fatal(err)
					}
				}
				raw, _ := json.Marshal(map[string]any{
					"schemaVersion": 2, "mediaType": string(types.DockerManifestSchema2),
					"config": map[string]any{"mediaType": string(types.DockerConfigJSON), "size": c.declared, "digest": cfg.String()},
					"layers": []map[string]any{{"mediaType": string(types.DockerLayer), "size": ln, "digest": layer.String()}},
				})
				if err := s.plain.PutManifest(repo+":1", &remote.Descriptor{Manifest: raw, Descriptor: v1.Descriptor{MediaType: types.DockerManifestSchema2}}); err != nil {
					t.Fatal(err)
				}
				images = append(images, s.plain.Host+"/"+repo+":1")
			}
			// The registry serves the whole blob, whatever the manifest says.
			resp, err := http.Head(fmt.Sprintf("%s/v2/%s-0/blobs/%s", s.plain.URL, base, cfg))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.ContentLength != n {
				t.Fatalf("the registry answers %s with Content-Length %d for the config, want %d", resp.Status, resp.ContentLength, n)
			}
			p := startMetered(t, fmt.Sprintf(`registries:
- name: plain
  api_url: %[1]s
  prefix: %[2]s
  limit: 100000
policy:
  resolve_timeout: 8s
  images:
  - prefix: %[2]s/measure
    strategy: newest-build
    allow_tags: regexp:^1$
`, s.plain.URL, s.plain.Host))
			pid := p.Cmd.Process.Pid
			hwm, rss, cpu := memory(t, pid, "VmHWM"), memory(t, pid, "VmRSS"), cpuTime(t, pid)
			start := time.Now()
			r, _ := p.post(t, annotatedReview(namespace(t, true), nil, images...))
			took := time.Since(start)
			// The answer lists 20 warnings and says how many more: each
			// listed one names the cap, and the metric counts 32 failures.
			for _, w := range r.Warnings {
				if !strings.Contains(w, c.want) && !strings.Contains(w, "more warnings") {
					t.Errorf("a warning that does not say %q: %q", c.want, w)
				}
			}
			if len(r.Warnings) == 0 {
				t.Errorf("no warning: %s", r.Patch)
			}
			failed := 0.0
			for _, line := range series(p.scrape(t), "image_pin_resolutions_total") {
				if strings.Contains(line, `strategy="newest-build"`) && strings.Contains(line, `result="error"`) {
					failed += sum([]string{line})
				}
			}
			if failed != 32 {
				t.Errorf("%v newest-build lookups failed, want all 32 refused", failed)
			}
			t.Logf("%s: 32 newest-build lookups over a %d-byte config (stored once, linked into 32 repositories) declared as %d bytes: answered in %v (deadline 8s); peak RSS (VmHWM) %d → %d KiB, RSS before %d KiB; webhook CPU %v",
				c.name, n, c.declared, took.Round(time.Millisecond), hwm, memory(t, pid, "VmHWM"), rss, cpuTime(t, pid)-cpu)
		})
	}
}

// paddedConfig is an image config of exactly size bytes (a label
// pads it), made as it is read.
func paddedConfig(size int64) io.Reader {
	head := `{"architecture":"amd64","os":"linux","created":"2026-01-02T03:04:05Z","rootfs":{"type":"layers","diff_ids":[]},"config":{"Labels":{"pad":"`
	tail := `"}}}`
	pad := size - int64(len(head)+len(tail))
	return io.MultiReader(strings.NewReader(head), io.LimitReader(repeat('a'), pad), strings.NewReader(tail))
}

// repeat reads b forever.
type repeat byte

func (r repeat) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

// One namespace's 20,000 distinct policies (each its own answer) fill the
// answers cache, then the victim's registry goes down: the victim is still
// pinned to its last known digests.
func TestMeasureTwentyThousandLookupsOfOneNamespaceLeaveAnothersLastKnownDigests(t *testing.T) {
	measuring(t)
	t.Parallel()
	victimReg, err := cluster.StartRegistry(filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "registry"), t.TempDir(), cluster.RegistryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(victimReg.Stop)
	var victim, want []string
	for i := range 3 {
		img := fmt.Sprintf("victim/app%d:1", i)
		want = append(want, push(t, victimReg, img))
		victim = append(victim, victimReg.Host+"/"+img)
	}
	repo := uniq("measure/flood")
	push(t, s.plain, repo+":1.0.0")
	p := startMetered(t, fmt.Sprintf(`registries:
- name: victim
  api_url: %[1]s
  prefix: %[2]s
- name: plain
  api_url: %[3]s
  prefix: %[4]s
  limit: 100000
policy:
  cache_ttl: 1s
  images:
  - prefix: %[4]s/%[5]s
    strategy: semver
    constraint: ">=1"
`, victimReg.URL, victimReg.Host, s.plain.URL, s.plain.Host, repo))
	victimNS, attackerNS := uniq("tenant-victim"), uniq("tenant-attacker")
	optInNamed(t, victimNS, attackerNS)
	r, _ := p.post(t, annotatedReview(victimNS, nil, victim...))
	for _, d := range want {
		if !strings.Contains(string(r.Patch), d) {
			t.Fatalf("the victim was not pinned at first: %s %q", r.Patch, r.Warnings)
		}
	}
	const lookups = 20000
	start := time.Now()
	var wg sync.WaitGroup
	var next atomic.Int64
	var failed atomic.Value
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= lookups; i = next.Add(1) {
				body := annotatedReview(attackerNS, map[string]string{"image-pin.io/ignore-tags": fmt.Sprintf("x%d", i)}, s.plain.Host+"/"+repo+":1.0.0")
				if r, _, err := p.send(body); err != nil || !strings.Contains(string(r.Patch), "@sha256:") {
					failed.Store(fmt.Errorf("attacker admission %d: %v: warnings %q patch %s", i, err, warningsOf(r), patchOf(r)))
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatal(err)
	}
	flood := time.Since(start)
	metrics := p.scrape(t)
	victimReg.Stop()
	r, _ = p.post(t, annotatedReview(victimNS, nil, victim...))
	for i, d := range want {
		if !strings.Contains(string(r.Patch), d) {
			t.Errorf("after %d lookups of another namespace and its registry down, %s is not pinned to its last known digest %s: %s %q", lookups, victim[i], d, r.Patch, r.Warnings)
		}
	}
	t.Logf("%d attacker admissions (8 clients) in %v; %s; victim after its registry went down: %d warnings, patch %d bytes", lookups, flood.Round(time.Millisecond), strings.Join(series(metrics, "image_pin_cache_entries"), "; "), len(r.Warnings), len(r.Patch))
}

// A lookup another namespace joins is charged to a neutral share: the
// joiner does not wait behind the starter's burst on the entry's rate
// limit. The burst: 4 newest-build lookups of the starter over 40 tags
// each (8 workers each: 32 requests queued at a time at 10/s). Then the
// starter asks for a digest, whose one request queues behind them, and
// another namespace asks for the same digest, joining that lookup.
// Measured: the joiner's latency joined and alone.
func TestMeasureAJoinedLookupUnderTheStartersBurst(t *testing.T) {
	measuring(t)
	t.Parallel()
	base := uniq("measure/burst")
	push(t, s.plain, base+"-big:0")
	putTags(t, s.plain, base+"-big", "1.0.", 40)
	shared, alone := base+"-shared:1", base+"-alone:1"
	push(t, s.plain, shared)
	push(t, s.plain, alone)
	p := startMetered(t, fmt.Sprintf(`registries:
- name: plain
  api_url: %[1]s
  prefix: %[2]s
  limit: 10
policy:
  resolve_timeout: 8s
  images:
  - prefix: %[2]s/%[3]s-big
    strategy: newest-build
`, s.plain.URL, s.plain.Host, base))
	warm := push(t, s.plain, base+"-warm:1")
	warmNS := uniq("tenant-w")
	optInNamed(t, warmNS)
	if r, _ := p.post(t, annotatedReview(warmNS, nil, s.plain.Host+"/"+base+"-warm:1")); !strings.Contains(string(r.Patch), warm) {
		t.Fatalf("the warm-up was not pinned: %q", r.Warnings)
	}
	starter, joiner := uniq("tenant-starter"), uniq("tenant-joiner")
	optInNamed(t, starter, joiner)
	big := s.plain.Host + "/" + base + "-big:0"
	ann := map[string]string{}
	for i := range 4 {
		ann[fmt.Sprintf("image-pin.io/ignore-tags.c%d", i)] = fmt.Sprintf("x%d", i) // four lookups, not one shared
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		_, _, _ = p.send(annotatedReview(starter, ann, big, big, big, big))
	}()
	// The burst is queued once its HEADs are being counted.
	for sum(series(p.scrape(t), "image_pin_registry_requests_total")) < 10 {
		time.Sleep(10 * time.Millisecond)
	}
	var starterTook time.Duration
	go func() {
		defer wg.Done()
		start := time.Now()
		_, _, _ = p.send(annotatedReview(starter, nil, s.plain.Host+"/"+shared))
		starterTook = time.Since(start)
	}()
	time.Sleep(300 * time.Millisecond) // the starter's digest lookup has started and queued
	start := time.Now()
	r, _ := p.post(t, annotatedReview(joiner, nil, s.plain.Host+"/"+shared))
	joined := time.Since(start)
	if !strings.Contains(string(r.Patch), "@sha256:") {
		t.Errorf("the joiner was not pinned: %q", r.Warnings)
	}
	wg.Wait()
	start = time.Now()
	r, _ = p.post(t, annotatedReview(joiner, nil, s.plain.Host+"/"+alone))
	single := time.Since(start)
	if !strings.Contains(string(r.Patch), "@sha256:") {
		t.Errorf("the lone lookup was not pinned: %q", r.Warnings)
	}
	t.Logf("joiner of a digest lookup queued behind the starter's burst (4 newest-build lookups over 40 tags, limit 10/s): %v joined (the starter's own admission of it: %v), %v alone", joined.Round(time.Millisecond), starterTook.Round(time.Millisecond), single.Round(time.Millisecond))
}

func warningsOf(r *admissionv1.AdmissionResponse) []string {
	if r == nil {
		return nil
	}
	return r.Warnings
}

func patchOf(r *admissionv1.AdmissionResponse) string {
	if r == nil {
		return ""
	}
	return string(r.Patch)
}
