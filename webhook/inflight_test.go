package webhook_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/image-pin/image-pin-webhook/config"
	"github.com/image-pin/image-pin-webhook/resolver"
	"github.com/image-pin/image-pin-webhook/test/registrytest"
	"github.com/image-pin/image-pin-webhook/webhook"
)

// post is env.admit for other goroutines than the test's: it returns its
// error instead of stopping the test.
func post(url string, body []byte) (*admissionv1.AdmissionResponse, error) {
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var review admissionv1.AdmissionReview
	if err := json.NewDecoder(resp.Body).Decode(&review); err != nil {
		return nil, err
	}
	if review.Response == nil {
		return nil, fmt.Errorf("no response in the AdmissionReview")
	}
	return review.Response, nil
}

// holdSlow makes srv hold every request for a /slow repository until gate
// is closed, telling arrived of each: admissions stay in flight for as long
// as the test wants, without any timing.
func holdSlow(srv *registrytest.Server, n int) (arrived chan string, gate chan struct{}) {
	arrived, gate = make(chan string, n), make(chan struct{})
	srv.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.Contains(r.URL.Path, "/slow") {
			return false
		}
		arrived <- r.URL.Path
		<-gate
		http.Error(w, "slow", http.StatusServiceUnavailable)
		return true
	})
	return arrived, gate
}

func TestAdmissionsInFlightAreBoundedAndShared(t *testing.T) {
	for _, onError := range []string{"ignore", "fail"} {
		t.Run("on_error "+onError, func(t *testing.T) {
			srv := registrytest.New(t)
			srv.PushImage(t, "app:1")
			srv.PushImage(t, "cold:1") // never looked up before the end: every admission of it needs a slot
			// Lookups of slow* wait here until the test lets them go, which
			// holds their admissions in flight without any timing.
			arrived, gate := holdSlow(srv, 16)
			doc := fmt.Sprintf("registries:\n- name: public\n  api_url: %s\n  prefix: %s\npolicy:\n  on_error: %s\n  resolve_timeout: 5m\n", srv.URL, srv.Host, onError)
			cfg, err := config.Parse([]byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			reg := prometheus.NewRegistry()
			h := webhook.NewHandler(func() *config.Config { return cfg }, resolver.New(), webhook.WithMaxInFlight(4), webhook.WithHandlerMetrics(webhook.NewMetrics(reg)))
			hs := httptest.NewServer(&admission.Webhook{Handler: h})
			t.Cleanup(hs.Close)
			var once sync.Once
			let := func() { once.Do(func() { close(gate) }) }
			t.Cleanup(let) // before the server closes: no handler stays blocked

			var wg sync.WaitGroup
			hold := func(ns string, i int) {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := post(hs.URL, review(t, admissionv1.Create, ns, deployment(nil, fmt.Sprintf("%s/slow%d:1", srv.Host, i)), nil)); err != nil {
						t.Error(err)
					}
				}()
				<-arrived // its lookup is at the registry: the admission holds a slot
			}
			refused := func(ns, bound string) {
				t.Helper()
				r := (&env{http: hs}).admit(t, review(t, admissionv1.Create, ns, deployment(nil, srv.Host+"/cold:1"), nil))
				msg := strings.Join(r.Warnings, "\n")
				if onError == "fail" {
					if r.Allowed {
						t.Fatalf("%s: allowed past the bound under on_error: fail: %s", ns, r.Patch)
					}
					msg = r.Result.Message
				} else if !r.Allowed || strings.Contains(string(r.Patch), "/spec/") {
					t.Fatalf("%s: past the bound, want admitted with its image as it is: allowed=%v %s", ns, r.Allowed, r.Patch)
				}
				if !strings.Contains(msg, bound) {
					t.Errorf("%s: the answer %q does not name the bound %q", ns, msg, bound)
				}
			}
			pinned := func(ns, image string) {
				t.Helper()
				r := (&env{http: hs}).admit(t, review(t, admissionv1.Create, ns, deployment(nil, srv.Host+"/"+image), nil))
				if !r.Allowed || !strings.Contains(string(r.Patch), "@sha256:") {
					t.Fatalf("%s: not pinned: %v %v %s", ns, r.Result, r.Warnings, r.Patch)
				}
			}

			hold("team-a", 0)
			refused("team-a", `namespace "team-a" has 1 admissions in flight already, its share of the webhook's bound of 4`)
			pinned("team-b", "app:1") // another namespace still gets a slot
			pinned("team-a", "app:1") // an admission answered from memory needs none
			for i, ns := range []string{"team-b", "team-c", "team-d"} {
				hold(ns, i+1)
			}
			refused("team-e", "the webhook has 4 admissions in flight already, its bound")

			let()
			wg.Wait()
			pinned("team-a", "cold:1") // every slot came back
			pinned("team-e", "cold:1") // the webhook-wide bound let go too
			// Each refusal counted once by the bound it was past, and
			// nothing else (warm and pinned admissions are not refusals).
			want := "# HELP image_pin_admissions_refused_total Admissions answered without a lookup because they were past an in-flight bound: reason namespace_share (the namespace's quarter), webhook_bound (the webhook's) or body_bytes (the request bodies in flight on the admission port: answered 429 unread).\n# TYPE image_pin_admissions_refused_total counter\n" +
				"image_pin_admissions_refused_total{reason=\"body_bytes\"} 0\nimage_pin_admissions_refused_total{reason=\"namespace_share\"} 1\nimage_pin_admissions_refused_total{reason=\"webhook_bound\"} 1\n"
			if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "image_pin_admissions_refused_total"); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestAnAdmissionPastItsShareIsPinnedToTheLastKnownDigestUnderIgnore(t *testing.T) {
	srv := registrytest.New(t)
	digest := srv.PushImage(t, "app:1")
	arrived, gate := holdSlow(srv, 4)
	doc := fmt.Sprintf("registries:\n- name: public\n  api_url: %s\n  prefix: %s\npolicy:\n  on_error: ignore\n  cache_ttl: 0s\n  resolve_timeout: 5m\n", srv.URL, srv.Host)
	cfg, err := config.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	h := webhook.NewHandler(func() *config.Config { return cfg }, resolver.New(), webhook.WithMaxInFlight(4))
	hs := httptest.NewServer(&admission.Webhook{Handler: h})
	t.Cleanup(hs.Close)
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	t.Cleanup(func() { close(gate) })
	e := &env{http: hs}
	if r := e.admit(t, review(t, admissionv1.Create, "team-a", deployment(nil, srv.Host+"/app:1"), nil)); !strings.Contains(string(r.Patch), digest) {
		t.Fatalf("not pinned at first: %v %s", r.Warnings, r.Patch)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if _, err := post(hs.URL, review(t, admissionv1.Create, "team-a", deployment(nil, srv.Host+"/slow:1"), nil)); err != nil {
			t.Error(err)
		}
	}()
	<-arrived // team-a holds its one slot
	// cache_ttl 0: app:1's answer is remembered as last known good only, so
	// the next admission of it must ask the registry.
	r := e.admit(t, review(t, admissionv1.Create, "team-a", deployment(nil, srv.Host+"/app:1"), nil))
	if !strings.Contains(string(r.Patch), digest) {
		t.Errorf("past its share, team-a was not pinned to the last known digest: %v %s", r.Warnings, r.Patch)
	}
	if w := strings.Join(r.Warnings, "\n"); !strings.Contains(w, "its share of the webhook's bound") || !strings.Contains(w, "last known digest") {
		t.Errorf("the warning %q does not name the bound and the last known digest", w)
	}
}
