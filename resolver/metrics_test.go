package resolver_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/image-pin/image-pin-webhook/resolver"
	"github.com/image-pin/image-pin-webhook/test/registrytest"
)

func TestResolutionsAreCountedByResult(t *testing.T) {
	srv := registrytest.New(t)
	srv.PushImage(t, "app:1")
	tgt := setup(t, srv, "app")
	reg := prometheus.NewRegistry()
	r := resolver.New(resolver.WithMetrics(resolver.NewMetrics(reg)))
	for range 3 {
		if _, err := r.Resolve(ctxFor(t, 5*time.Second), query(tgt, "1", digestPolicy())); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.Resolve(ctxFor(t, 5*time.Second), query(tgt, "nosuchtag", digestPolicy())); err == nil {
		t.Fatal("a missing tag resolved")
	}
	want := `
# HELP image_pin_resolutions_total Image resolutions by registry, strategy and result (resolved, cache_hit, stale, not_found, unauthorized, error).
# TYPE image_pin_resolutions_total counter
image_pin_resolutions_total{registry="test",result="cache_hit",strategy="digest"} 2
image_pin_resolutions_total{registry="test",result="not_found",strategy="digest"} 1
image_pin_resolutions_total{registry="test",result="resolved",strategy="digest"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "image_pin_resolutions_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(reg, "image_pin_resolve_duration_seconds"); n != 1 {
		t.Errorf("%d duration series, want 1", n)
	}
}

func TestATokenEndpointThatFailsOrHangsIsAnErrorWithinTheDeadline(t *testing.T) {
	tests := []struct {
		name  string
		token func(w http.ResponseWriter, r *http.Request)
	}{
		{"a 500 from the token endpoint", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) }},
		{"a token endpoint that hangs", func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := registrytest.New(t, registrytest.WithBearer("u", "p"))
			srv.PushImage(t, "app:1")
			tgt := setup(t, srv, "app", withLogin("u:p"))
			srv.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
				if r.URL.Path != "/token" {
					return false
				}
				tc.token(w, r)
				return true
			})
			start := time.Now()
			if _, err := resolver.New().Resolve(ctxFor(t, time.Second), query(tgt, "1", digestPolicy())); err == nil {
				t.Fatal("resolved without a token")
			}
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("took %s with a 1s deadline", took)
			}
		})
	}
}
