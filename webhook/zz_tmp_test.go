package webhook_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/image-pin/image-pin-webhook/config"
	"github.com/image-pin/image-pin-webhook/resolver"
	"github.com/image-pin/image-pin-webhook/test/registrytest"
	"github.com/image-pin/image-pin-webhook/webhook"
	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

type nop struct{}

func (nop) Handle(context.Context, admission.Request) admission.Response {
	return admission.Allowed("")
}

func BenchmarkTmpNop(b *testing.B) {
	h := &admission.Webhook{Handler: nop{}}
	body := review(b, admissionv1.Create, "team-a", deployment(nil, "a/b:1", "a/c:1", "a/d:1", "a/e:1", "a/f:1"), nil)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/mutate", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		h.ServeHTTP(rec, req)
	}
}

func BenchmarkTmpHandle(b *testing.B) {
	srv := registrytest.New(b)
	images := make([]string, 5)
	for i := range 5 {
		srv.PushImage(b, fmt.Sprintf("app%d:1", i))
		images[i] = fmt.Sprintf("%s/app%d:1", srv.Host, i)
	}
	cfg := configFor(b, srv)
	h := webhook.NewHandler(func() *config.Config { return cfg }, resolver.New())
	body := review(b, admissionv1.Create, "team-a", deployment(nil, images...), nil)
	req := request(b, body)
	h.Handle(context.Background(), req)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		h.Handle(context.Background(), req)
	}
}
