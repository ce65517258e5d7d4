package envtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	admissionv1 "k8s.io/api/admission/v1"
)

// An attacker's sweep of what a tenant may push to its own repository of
// a shared registry (distribution's, the suite's plain one): indexes of
// very many entries and nested ones, manifests at and past the manifest
// cap, huge annotations, repositories of very many tags and tags of the
// longest length. Each case is one admission of a Pod in an opted-in
// namespace, through a webhook of its own; always asserted: it is answered
// by the deadline (no "no answer ... in time" warning) and each lookup
// fails, naming the bound where distribution answers in time; logged: the
// answer's time, the webhook's CPU (utime+stime) by the answer and its
// peak RSS (VmHWM) before and after. What costs more than a few seconds to
// seed or to answer (32 repositories of the wide index, the manifests at
// the cap, the 100,000 tags) runs with IMAGE_PIN_MEASURE=1.

// contentCost is what one admission cost the webhook.
type contentCost struct {
	r              *admissionv1.AdmissionResponse
	took, cpu      time.Duration
	hwm, hwmAfter  int // KiB
	rss, resolving int // KiB; resolving: failed lookups counted
}

func (c contentCost) String() string {
	return fmt.Sprintf("answered in %v, webhook CPU %v by the answer, peak RSS (VmHWM) %d → %d KiB (RSS before %d KiB), %d lookups failed",
		c.took.Round(time.Millisecond), c.cpu, c.hwm, c.hwmAfter, c.rss, c.resolving)
}

// answer is every warning of the response in one string.
func (c contentCost) answer() string {
	s := strings.Join(c.r.Warnings, "\n")
	if c.r.Result != nil {
		s += "\n" + c.r.Result.Message
	}
	return s
}

// admitContent starts a webhook whose one rule (strategy, with extra
// lines) covers every measure/ repository and whose entry has the extra
// lines entry, and admits a Pod of images in a namespace of the
// test's own.
func admitContent(t *testing.T, rule, entry string, images []string) contentCost {
	t.Helper()
	p := startMetered(t, fmt.Sprintf(`registries:
- name: plain
  api_url: %[1]s
  prefix: %[2]s
  limit: 100000
%[4]s
policy:
  resolve_timeout: 8s
  images:
  - prefix: %[2]s/measure
%[3]s
`, s.plain.URL, s.plain.Host, rule, entry))
	pid := p.Cmd.Process.Pid
	c := contentCost{hwm: memory(t, pid, "VmHWM"), rss: memory(t, pid, "VmRSS")}
	ns := namespace(t, true)
	cpu, start := cpuTime(t, pid), time.Now()
	c.r, _ = p.post(t, annotatedReview(ns, nil, images...))
	c.took, c.cpu = time.Since(start), cpuTime(t, pid)-cpu
	c.hwmAfter = memory(t, pid, "VmHWM")
	for _, line := range series(p.scrape(t), "image_pin_resolutions_total") {
		if strings.Contains(line, `result="error"`) || strings.Contains(line, `result="not_found"`) {
			c.resolving += int(sum([]string{line}))
		}
	}
	// A lookup that ran out of its time says so ("context deadline
	// exceeded") before the admission's deadline; one still running at the
	// admission's deadline is answered "no answer ... in time".
	if a := c.answer(); strings.Contains(a, "in time") {
		t.Errorf("an admission answered at its deadline, not by it: %.500s", a)
	}
	return c
}

// wantEach checks that every listed warning says want (the answer lists
// 20 and says how many more) and that n lookups failed.
func wantEach(t *testing.T, c contentCost, want string, n int) {
	t.Helper()
	if len(c.r.Warnings) == 0 {
		t.Errorf("no warning, patch %s", c.r.Patch)
	}
	for _, w := range c.r.Warnings {
		if !strings.Contains(w, want) && !strings.Contains(w, "more warnings") {
			t.Errorf("a warning that does not say %q: %.300q", want, w)
		}
	}
	if c.resolving != n {
		t.Errorf("%d lookups failed, want %d", c.resolving, n)
	}
}

// childImage pushes one small image to repo and returns its manifest.
func childImage(t *testing.T, repo string) *remote.Descriptor {
	t.Helper()
	push(t, s.plain, repo+":child")
	d, err := s.plain.Get(repo + ":child")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// linkImage makes the image img, pushed to another repository, one of
// repo too (its blobs and its manifest linked on disk, as a cross-repository
// mount and a PUT of the same manifest would store them).
func linkImage(t *testing.T, repo string, img *remote.Descriptor) {
	t.Helper()
	m, err := v1.ParseManifest(strings.NewReader(string(img.Manifest)))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range append([]v1.Descriptor{m.Config}, m.Layers...) {
		if err := s.plain.LinkBlobOnDisk(repo, b.Digest); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.plain.LinkManifestOnDisk(repo, img.Digest, "child"); err != nil {
		t.Fatal(err)
	}
}

func descOf(d *remote.Descriptor) v1.Descriptor {
	return v1.Descriptor{MediaType: d.MediaType, Size: d.Size, Digest: d.Digest}
}

// indexOf is an OCI index of entries, each with a platform of its own.
func indexOf(children []v1.Descriptor) []byte {
	var ms []map[string]any
	for i, c := range children {
		ms = append(ms, map[string]any{"mediaType": string(c.MediaType), "size": c.Size, "digest": c.Digest.String(),
			"platform": map[string]string{"os": "linux", "architecture": fmt.Sprintf("arch%05d", i)}})
	}
	b, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": string(types.OCIImageIndex), "manifests": ms})
	return b
}

// putIndex pushes raw as repo:tag through the registry's API, as a tenant
// would, and returns its descriptor.
func putIndex(t *testing.T, repo, tag string, raw []byte) v1.Descriptor {
	t.Helper()
	d := &remote.Descriptor{Manifest: raw, Descriptor: v1.Descriptor{MediaType: types.OCIImageIndex}}
	if err := s.plain.PutManifest(repo+":"+tag, d); err != nil {
		t.Fatal(err)
	}
	got, err := s.plain.Get(repo + ":" + tag)
	if err != nil {
		t.Fatal(err)
	}
	return v1.Descriptor{MediaType: got.MediaType, Size: got.Size, Digest: got.Digest}
}

// An index of 10,000 entries (one image under 10,000 platforms, 2.1 MiB,
// pushed through the API), in one repository and (with IMAGE_PIN_MEASURE=1)
// in 32 repositories of one Pod: under
// newest-build each lookup stops at the 32 images of an index it reads
// the build date of; under an entry's platforms each reads the index once
// and finds linux/amd64 missing.
func TestMeasureAnIndexOfTenThousandEntries(t *testing.T) {
	t.Parallel()
	base := uniq("measure/wide")
	img := childImage(t, base+"-0")
	child := descOf(img)
	children := make([]v1.Descriptor, 10000)
	for i := range children {
		children[i] = child
	}
	raw := indexOf(children)
	idx := putIndex(t, base+"-0", "1", raw)
	images := []string{s.plain.Host + "/" + base + "-0:1"}
	repos := 1
	if os.Getenv("IMAGE_PIN_MEASURE") == "1" {
		repos = 32
	}
	for i := 1; i < repos; i++ {
		repo := fmt.Sprintf("%s-%d", base, i)
		linkImage(t, repo, img) // the child and the index in every repository, as pushes of them would store them
		if err := s.plain.LinkManifestOnDisk(repo, idx.Digest, "1"); err != nil {
			t.Fatal(err)
		}
		images = append(images, s.plain.Host+"/"+repo+":1")
	}
	head := time.Now()
	req, _ := http.NewRequest(http.MethodHead, fmt.Sprintf("%s/v2/%s-0/manifests/1", s.plain.URL, base), nil)
	req.Header.Set("Accept", string(types.OCIImageIndex))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	t.Logf("distribution answers one HEAD of the index alone in %v", time.Since(head).Round(time.Millisecond))
	for _, c := range []struct {
		name, rule, entry, want string
		n                       int
	}{
		{"newest-build, one container", "    strategy: newest-build\n    allow_tags: regexp:^1$", "", "more than 32 images", 1},
		{"platforms, one container", "    strategy: digest", "  platforms: [linux/amd64]", "more than 256 platforms", 1},
		{"newest-build, 32 containers", "    strategy: newest-build\n    allow_tags: regexp:^1$", "", "", 32},
		{"platforms, 32 containers", "    strategy: digest", "  platforms: [linux/amd64]", "", 32},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.n > len(images) {
				measuring(t)
			}
			got := admitContent(t, c.rule, c.entry, images[:c.n])
			if c.want != "" {
				wantEach(t, got, c.want, c.n)
			} else if got.resolving != c.n {
				t.Errorf("%d lookups failed, want %d", got.resolving, c.n)
			}
			t.Logf("an index of 10,000 entries (%d bytes), %s: %v; the first warning: %.250s", len(raw), c.name, got, got.r.Warnings[0])
		})
	}
}

// Indexes nested 8 deep (an index of an index of ... of an image): the
// webhook reads one level of an index, never follows one into another.
func TestMeasureIndexesNestedEightDeep(t *testing.T) {
	t.Parallel()
	repo := uniq("measure/nested")
	d := descOf(childImage(t, repo))
	for i := range 8 {
		d = putIndex(t, repo, fmt.Sprintf("n%d", i), indexOf([]v1.Descriptor{d}))
	}
	images := []string{s.plain.Host + "/" + repo + ":n7"}
	for _, c := range []struct{ name, rule, entry, want string }{
		{"newest-build", "    strategy: newest-build\n    allow_tags: regexp:^n7$", "", "no tag's build date could be read"},
		{"platforms", "    strategy: digest", "  platforms: [linux/amd64]", "does not cover the platforms linux/amd64"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got := admitContent(t, c.rule, c.entry, images)
			wantEach(t, got, c.want, 1)
			t.Logf("indexes nested 8 deep, %s: %v; the answer: %.300s", c.name, got, got.answer())
		})
	}
}

// hugeManifest is an image manifest of about size bytes, all but a few
// hundred of them in one annotation; salt makes each distinct.
func hugeManifest(child v1.Descriptor, cfg v1.Descriptor, size int, salt string) []byte {
	m := map[string]any{"schemaVersion": 2, "mediaType": string(types.OCIManifestSchema1),
		"config": map[string]any{"mediaType": string(types.OCIConfigJSON), "size": cfg.Size, "digest": cfg.Digest.String()},
		"layers": []map[string]any{{"mediaType": string(types.OCILayer), "size": child.Size, "digest": child.Digest.String()}},
	}
	small, _ := json.Marshal(m)
	m["annotations"] = map[string]string{"pad": salt + strings.Repeat("x", size-len(small)-len(`,"annotations":{"pad":""}`)-len(salt))}
	b, _ := json.Marshal(m)
	return b
}

// Manifests at the manifest cap. 8 distinct image manifests of 4 MiB less
// 1 KiB (one huge annotation each; the first pushed through the API, as a
// tenant can, then linked on disk) tagged in 32 repositories of one Pod
// under newest-build: 32 lookups of 8 workers each, up to 256 manifests of
// ~4 MiB read and decoded at once. Past the cap there is nothing to
// measure against distribution: it refuses a 6 MiB manifest by PUT (checked
// here) and will not serve one stored on disk either ("read exceeds
// limit"); resolver/manifestcap_test.go serves one from
// go-containerregistry's registry.
func TestMeasureManifestsAtTheManifestCap(t *testing.T) {
	measuring(t)
	t.Parallel()
	base := uniq("measure/fat")
	first := base + "-0"
	push(t, s.plain, first+":0")
	img, err := s.plain.Get(first + ":0")
	if err != nil {
		t.Fatal(err)
	}
	m, err := v1.ParseManifest(strings.NewReader(string(img.Manifest)))
	if err != nil {
		t.Fatal(err)
	}
	put := func(repo, tag string, raw []byte) error {
		return s.plain.PutManifest(repo+":"+tag, &remote.Descriptor{Manifest: raw, Descriptor: v1.Descriptor{MediaType: types.OCIManifestSchema1}})
	}
	over := hugeManifest(m.Layers[0], m.Config, 6<<20, "over")
	if err := put(first, "over", over); err == nil {
		t.Errorf("distribution took a 6 MiB manifest by PUT")
	}
	var digests []v1.Hash
	for i := range 8 {
		raw := hugeManifest(m.Layers[0], m.Config, 4<<20-1<<10, fmt.Sprint(i))
		if i == 0 {
			if err := put(first, "t0", raw); err != nil {
				t.Fatalf("distribution refused a manifest of %d bytes by PUT: %v", len(raw), err)
			}
		}
		d, err := s.plain.ManifestOnDisk(first, raw, fmt.Sprintf("t%d", i))
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, d)
	}
	var images []string
	var wg sync.WaitGroup
	errs := make([]error, 32)
	for i := range 32 {
		repo := fmt.Sprintf("%s-%d", base, i)
		images = append(images, s.plain.Host+"/"+repo+":t0")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, b := range []v1.Hash{m.Config.Digest, m.Layers[0].Digest} {
				if err := s.plain.LinkBlobOnDisk(repo, b); err != nil {
					errs[i] = err
					return
				}
			}
			for j, d := range digests {
				if err := s.plain.LinkManifestOnDisk(repo, d, fmt.Sprintf("t%d", j)); err != nil {
					errs[i] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got := admitContent(t, "    strategy: newest-build\n    allow_tags: regexp:^t", "", images)
	// distribution decodes each 4 MiB manifest at every HEAD and GET, so
	// on 2 cores most lookups run out of their time: pinned or failed, the
	// peak RSS is the measure.
	pinned := strings.Count(string(got.r.Patch), "@sha256:")
	if pinned+got.resolving != 32 {
		t.Errorf("%d pinned and %d failed of 32 lookups", pinned, got.resolving)
	}
	t.Logf("8 manifests of %d bytes × 32 repositories, newest-build (8 workers × 32 lookups): %v, %d pinned", 4<<20-1<<10, got, pinned)
}

// tagRepo is a repository of n tags of the one pushed image, seeded on
// disk (8 writers), each tag name(i).
func tagRepo(t *testing.T, repo string, n int, name func(int) string) {
	t.Helper()
	push(t, s.plain, repo+":0")
	desc, err := s.plain.Get(repo + ":0")
	if err != nil {
		t.Fatal(err)
	}
	const chunk = 5000
	var wg sync.WaitGroup
	errs := make(chan error, n/chunk+1)
	sem := make(chan struct{}, 8)
	for lo := 0; lo < n; lo += chunk {
		var tags []string
		for i := lo; i < min(lo+chunk, n); i++ {
			tags = append(tags, name(i))
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := s.plain.TagOnDisk(repo, desc, tags...); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// 100,000 tags in one repository (seeded on disk) under each strategy:
// the listing stops at its 50 pages (50,000 tags) and the lookup fails
// naming the bound. And 40,000 tags of the longest length a tag may have
// (128 characters): the listing stops at its 4 MiB.
func TestMeasureARepositoryOfAHundredThousandTags(t *testing.T) {
	measuring(t)
	t.Parallel()
	many, long := uniq("measure/many"), uniq("measure/long")
	start := time.Now()
	tagRepo(t, many, 100000, func(i int) string { return fmt.Sprintf("1.%d.%d", i/1000, i%1000) })
	tagRepo(t, long, 40000, func(i int) string {
		return fmt.Sprintf("1.0.%d-%s", i, strings.Repeat("x", 128-len(fmt.Sprintf("1.0.%d-", i))))
	})
	t.Logf("seeded 140,000 tags on disk in %v", time.Since(start).Round(time.Millisecond))
	for _, c := range []struct{ name, repo, rule, want string }{
		{"semver over 100,000 tags", many, "    strategy: semver\n    constraint: \">=1\"", "more than 50 pages"},
		{"alphabetical over 100,000 tags", many, "    strategy: alphabetical", "more than 50 pages"},
		{"newest-build over 100,000 tags", many, "    strategy: newest-build", "more than 50 pages"},
		{"semver over 40,000 tags of 128 characters", long, "    strategy: semver\n    constraint: \">=1\"", "longer than 4 MiB"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := admitContent(t, c.rule, "", []string{s.plain.Host + "/" + c.repo + ":0"})
			// distribution reads the whole tags directory for every page,
			// so on a loaded machine the lookup may run out of its time
			// before the listing reaches its bound: either way it fails.
			// (A warning is cut to its bound: the cause may be past it.)
			if a := got.answer(); !strings.Contains(a, c.want) && !strings.Contains(a, "listing the tags of") {
				t.Errorf("the answer says neither %q nor that the listing failed: %.400s", c.want, a)
			}
			if got.resolving != 1 {
				t.Errorf("%d lookups failed, want 1", got.resolving)
			}
			t.Logf("%s: %v; the answer: %.300s", c.name, got, got.answer())
		})
	}
}
