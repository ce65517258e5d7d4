package webhook_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/image-pin/image-pin-webhook/config"
	"github.com/image-pin/image-pin-webhook/resolver"
	"github.com/image-pin/image-pin-webhook/test/registrytest"
	"github.com/image-pin/image-pin-webhook/webhook"
)

// BenchmarkWarmAdmission is one AdmissionReview of a Deployment with n
// containers, all in cache, through controller-runtime's HTTP handler
// (decode, walk, resolve from cache, patch, encode); TLS is not included.
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
			h := &admission.Webhook{Handler: webhook.NewHandler(func() *config.Config { return cfg }, resolver.New())}
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
