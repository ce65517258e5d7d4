package webhook_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/image-pin/image-pin-webhook/config"
	"github.com/image-pin/image-pin-webhook/resolver"
	"github.com/image-pin/image-pin-webhook/test/registrytest"
	"github.com/image-pin/image-pin-webhook/webhook"
)

// BenchmarkWarmAdmission is one AdmissionReview of a Deployment with n
// containers, all in cache, through the HTTP handler cmd/webhook serves
// at /mutate, Serve (decode, walk, resolve from cache, patch, encode); TLS
// and controller-runtime's metrics around it are not included.
func BenchmarkWarmAdmission(b *testing.B) {
	for _, n := range []int{1, 5, 20} {
		b.Run(fmt.Sprintf("containers=%d", n), func(b *testing.B) {
			srv := registrytest.New(b)
			images := make([]string, n)
			for i := range n {
				srv.PushImage(b, fmt.Sprintf("app%d:1", i))
				images[i] = fmt.Sprintf("%s/app%d:1", srv.Host, i)
			}
			cfg := configFor(b, srv)
			h := webhook.Serve(webhook.NewHandler(func() *config.Config { return cfg }, resolver.New()), logr.Discard())
			body := review(b, admissionv1.Create, "team-a", deployment(nil, images...), nil)
			post := func() *httptest.ResponseRecorder {
				rec := httptest.NewRecorder()
				req := httptest.NewRequest(http.MethodPost, "/mutate", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				h.ServeHTTP(rec, req)
				return rec
			}
			if rec := post(); !bytes.Contains(rec.Body.Bytes(), []byte(`"patch"`)) {
				b.Fatalf("not patched: %s", rec.Body)
			}
			srv.Reset()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				post()
			}
			b.StopTimer()
			if srv.Total() != 0 {
				b.Fatalf("%d registry requests while warm", srv.Total())
			}
		})
	}
}

// BenchmarkWarmAdmissionHandleOnly is the same admission of 5 containers
// through Handler.Handle alone: the handler's own share of the above.
func BenchmarkWarmAdmissionHandleOnly(b *testing.B) {
	srv := registrytest.New(b)
	images := make([]string, 5)
	for i := range images {
		srv.PushImage(b, fmt.Sprintf("app%d:1", i))
		images[i] = fmt.Sprintf("%s/app%d:1", srv.Host, i)
	}
	cfg := configFor(b, srv)
	h := webhook.NewHandler(func() *config.Config { return cfg }, resolver.New())
	req := request(b, review(b, admissionv1.Create, "team-a", deployment(nil, images...), nil))
	if resp := h.Handle(context.Background(), req); len(resp.Patches) != len(images)+1 {
		b.Fatalf("%d patches, want %d", len(resp.Patches), len(images)+1)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		h.Handle(context.Background(), req)
	}
}

// allowAll answers every admission at once, allocating nothing of its own.
type allowAll struct{}

func (allowAll) Handle(context.Context, admission.Request) admission.Response {
	return admission.Allowed("")
}

// BenchmarkWarmAdmissionFloor is Serve around a handler that does
// nothing, for the same review: what the benchmark above costs whatever
// the handler does (decoding the review, encoding the answer, the
// recorder and request of the benchmark itself).
func BenchmarkWarmAdmissionFloor(b *testing.B) {
	benchmarkFloor(b, webhook.Serve(allowAll{}, logr.Discard()))
}

// BenchmarkWarmAdmissionFloorControllerRuntime is the same through
// controller-runtime's admission.Webhook, which served /mutate before
// Serve: the difference is what Serve saves.
func BenchmarkWarmAdmissionFloorControllerRuntime(b *testing.B) {
	benchmarkFloor(b, &admission.Webhook{Handler: allowAll{}})
}

// BenchmarkWarmAdmissionHarness is the benchmark's own share of the
// floor: its recorder and request around an HTTP handler that does nothing.
func BenchmarkWarmAdmissionHarness(b *testing.B) {
	benchmarkFloor(b, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
}

func benchmarkFloor(b *testing.B, h http.Handler) {
	images := []string{"r/app0:1", "r/app1:1", "r/app2:1", "r/app3:1", "r/app4:1"}
	body := review(b, admissionv1.Create, "team-a", deployment(nil, images...), nil)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/mutate", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		h.ServeHTTP(rec, req)
	}
}
