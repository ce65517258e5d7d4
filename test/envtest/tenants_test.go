package envtest

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// tenantNamespace makes an opted-in namespace whose name an entry's
// namespaces glob (tenant-a-*) admits or not.
func tenantNamespace(t *testing.T, prefix string) string {
	t.Helper()
	name := fmt.Sprintf("%s-%06d", prefix, rand.IntN(1_000_000))
	c, _ := kube(t)
	if err := c.Create(ctx(t), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"image-pin.io/enabled": "true"}}}); err != nil {
		t.Fatal(err)
	}
	return name
}

// TestTenantsNeverSeeEachOthersAnswersOrFailures is the check: a
// private repository on a registry with bearer-token auth, an entry with
// credentials scoped to tenant-a-* and an anonymous catch-all for everyone
// else. In either order, with and without cache expiry, the other namespace
// is never pinned to tenant-a's digest and tenant-a never gets the other's
// failure.
func TestTenantsNeverSeeEachOthersAnswersOrFailures(t *testing.T) {
	t.Parallel()
	for _, order := range []string{"scoped first", "unscoped first"} {
		for _, expire := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s, cache expired between: %v", order, expire), func(t *testing.T) {
				t.Parallel()
				repo := "tenant/" + uniq("private")
				digest := push(t, s.tokenReg, repo+":1")
				image := s.tokenReg.Host + "/" + repo + ":1"
				scoped, other := tenantNamespace(t, "tenant-a"), tenantNamespace(t, "tenant-c")
				c, w := kube(t)
				admitScoped := func() {
					d := deploy(scoped, nil, image)
					if err := c.Create(ctx(t), d); err != nil {
						t.Fatalf("tenant-a was denied (another namespace's failure?): %v", err)
					}
					if got := stored(t, d); got != image+"@"+digest {
						t.Fatalf("tenant-a stored %q, want it pinned (warnings: %s)", got, w.all())
					}
				}
				admitOther := func() {
					d := deploy(other, nil, image)
					err := c.Create(ctx(t), d)
					if err == nil {
						t.Fatalf("the unscoped namespace was admitted: stored %q", stored(t, d))
					}
					if strings.Contains(err.Error(), digest) {
						t.Fatalf("the denial names tenant-a's digest: %v", err)
					}
				}
				steps := []func(){admitScoped, admitOther}
				if order == "unscoped first" {
					steps = []func(){admitOther, admitScoped}
				}
				for i, step := range steps {
					if i > 0 && expire {
						waitOutCacheTTL() // last-known-good stays
					}
					step()
				}
			})
		}
	}
}

// Not parallel: it counts every registry request the suite's webhook
// makes, but those of the entry env (ping: yes, pinged in the background
// after each reload; its prefix cannot cover the reference).
func TestDotSegmentReferencesMakeNoRegistryRequest(t *testing.T) {
	ns := tenantNamespace(t, "tenant-c")
	c, _ := kube(t)
	before := scrapeRequestsBut(t, "env")
	d := deploy(ns, nil, s.tokenReg.Host+"/tenant-b/../tenant/app:1")
	err := c.Create(ctx(t), d)
	if err == nil {
		// The API server itself may refuse the reference first; if it did
		// not, the webhook left it alone with a warning.
		if got := stored(t, d); strings.Contains(got, "@") {
			t.Fatalf("a dot-segment reference was pinned: %q", got)
		}
	}
	if after := scrapeRequestsBut(t, "env"); after != before {
		t.Errorf("registry requests went from %d to %d for a dot-segment reference", before, after)
	}
}

// scrapeRequests sums image_pin_registry_requests_total over every series.
func scrapeRequests(t *testing.T) int {
	t.Helper()
	return scrapeRequestsBut(t, "")
}

// scrapeRequestsBut sums image_pin_registry_requests_total over the series
// of every entry but the one named entry.
func scrapeRequestsBut(t *testing.T, entry string) int {
	t.Helper()
	resp, err := http.Get("http://" + s.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	total := 0.0
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "image_pin_registry_requests_total{") && (entry == "" || !strings.Contains(line, fmt.Sprintf("registry=%q", entry))) {
			var v float64
			fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v)
			total += v
		}
	}
	return int(total)
}
