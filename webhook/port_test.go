package webhook_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/image-pin/image-pin-webhook/config"
	"github.com/image-pin/image-pin-webhook/resolver"
	"github.com/image-pin/image-pin-webhook/webhook"
)

func TestForgedReviewsLeaveTheAdmissionMetricWithBoundedSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg, err := config.Parse([]byte("registries: []\n"))
	if err != nil {
		t.Fatal(err)
	}
	h := webhook.NewHandler(func() *config.Config { return cfg }, resolver.New(), webhook.WithHandlerMetrics(webhook.NewMetrics(reg)))
	for i := 0; i < 300; i++ {
		req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
			UID:       "x",
			Kind:      metav1.GroupVersionKind{Version: "v1", Kind: fmt.Sprintf("Forged%d", i)},
			Operation: admissionv1.Operation(fmt.Sprintf("OP%d", i)),
			Namespace: "team-b",
		}}
		h.Handle(context.Background(), req)
	}
	n, err := testutil.GatherAndCount(reg, "image_pin_admissions_total")
	if err != nil {
		t.Fatal(err)
	}
	if n > 4 {
		t.Errorf("300 forged reviews made %d series, want at most one per outcome", n)
	}
}

func TestASlowClientIsCutOffAtTheReadDeadline(t *testing.T) {
	srv := httptest.NewServer(webhook.WithDeadlines(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 1<<10)
		for {
			if _, err := r.Body.Read(buf); err != nil {
				http.Error(w, err.Error(), http.StatusRequestTimeout)
				return
			}
		}
	}), 200*time.Millisecond, time.Second))
	defer srv.Close()
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() { _, _ = pw.Write([]byte("{")) }() // then nothing: a slowloris body
	start := time.Now()
	resp, err := http.Post(srv.URL, "application/json", pr)
	if err == nil {
		resp.Body.Close()
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the request was held %s, want about the 200ms read deadline", d)
	}
}
