package webhook_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"

	"github.com/image-pin/image-pin-webhook/config"
	"github.com/image-pin/image-pin-webhook/resolver"
	"github.com/image-pin/image-pin-webhook/test/registrytest"
	"github.com/image-pin/image-pin-webhook/webhook"
)

// FuzzAdmissionReview feeds arbitrary bytes to the whole decode-and-patch
// path: no panic, and a well-formed AdmissionReview whenever the body is one.
func FuzzAdmissionReview(f *testing.F) {
	srv := registrytest.New(f)
	for _, rt := range []string{"app:1", "init:latest", "debug:1"} {
		srv.PushImage(f, rt)
	}
	files, _ := filepath.Glob("testdata/*.json")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(bytes.ReplaceAll(b, []byte("REGISTRY"), []byte(srv.Host)))
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"request":{"uid":"x","kind":{"version":"v1","kind":"Pod"},"object":{"metadata":{"annotations":{"image-pin.io/constraint":"~1"}},"spec":{"containers":[{"name":"a","image":"docker.io/app:1"}]}}}}`))
	cfg := configFor(f, srv, withPolicy("policy:\n  resolve_timeout: 500ms\n"))
	h := webhook.Serve(webhook.NewHandler(func() *config.Config { return cfg }, resolver.New()), logr.Discard())
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/mutate", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		h.ServeHTTP(rec, req)
		var in admissionv1.AdmissionReview
		if json.Unmarshal(body, &in) != nil || in.Request == nil {
			return
		}
		var out admissionv1.AdmissionReview
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Response == nil {
			t.Fatalf("no well-formed AdmissionReview for a well-formed request: %v %q", err, rec.Body.String())
		}
		if out.Response.UID != in.Request.UID {
			t.Fatalf("uid %q, want %q", out.Response.UID, in.Request.UID)
		}
	})
}
