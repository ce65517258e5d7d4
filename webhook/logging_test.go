package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/image-pin/image-pin-webhook/config"
	"github.com/image-pin/image-pin-webhook/resolver"
	"github.com/image-pin/image-pin-webhook/webhook"
)

// logLines collects what a logger wrote, one JSON object a line as the
// binary's zap logger writes them.
type logLines struct {
	mu    sync.Mutex
	lines []map[string]any
}

// logger logs at verbosity v (0 is the default level).
func (l *logLines) logger(v int) logr.Logger {
	return funcr.NewJSON(func(obj string) {
		var m map[string]any
		if err := json.Unmarshal([]byte(obj), &m); err != nil {
			panic(err)
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		l.lines = append(l.lines, m)
	}, funcr.Options{Verbosity: v})
}

// with returns the lines whose msg is msg.
func (l *logLines) with(msg string) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, m := range l.lines {
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, m := range l.lines {
		j, _ := json.Marshal(m)
		b.Write(j)
		b.WriteByte('\n')
	}
	return b.String()
}

// request decodes an AdmissionReview body into the request the handler gets.
func request(t testing.TB, body []byte) admission.Request {
	t.Helper()
	var rev admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &rev); err != nil || rev.Request == nil {
		t.Fatalf("not an AdmissionReview: %v", err)
	}
	return admission.Request{AdmissionRequest: *rev.Request}
}

// assertFields checks that line holds each key with the value given.
func assertFields(t *testing.T, line map[string]any, kv ...any) {
	t.Helper()
	for i := 0; i+1 < len(kv); i += 2 {
		k := kv[i].(string)
		if got := line[k]; got != kv[i+1] {
			t.Errorf("%s = %v, want %v in %v", k, got, kv[i+1], line)
		}
	}
}

func TestReportModeCountsReportedAndLogsEachWouldBePin(t *testing.T) {
	e := newEnv(t, withPolicy("policy:\n  mode: report\n"))
	reg := prometheus.NewRegistry()
	var logs logLines
	h := webhook.NewHandler(func() *config.Config { return e.cfg.Load() }, e.res,
		webhook.WithHandlerMetrics(webhook.NewMetrics(reg)), webhook.WithLogger(logs.logger(0)))
	app := e.srv.Host + "/app:1"
	resp := h.Handle(context.Background(), request(t, review(t, admissionv1.Create, "team-a", deployment(nil, app), nil)))
	if len(resp.Patches) != 0 {
		t.Fatalf("report mode patched: %v", resp.Patches)
	}
	want := `
# HELP image_pin_admissions_total Admissions by kind, operation and outcome (patched, reported (report mode: would have patched), unchanged, denied, error).
# TYPE image_pin_admissions_total counter
image_pin_admissions_total{kind="Deployment",operation="CREATE",outcome="reported"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "image_pin_admissions_total"); err != nil {
		t.Error(err)
	}
	lines := logs.with("report mode: would pin")
	if len(lines) != 1 {
		t.Fatalf("%d would-pin lines, want 1:\n%s", len(lines), &logs)
	}
	assertFields(t, lines[0], "container", "app", "image", app, "pin", e.pinned("REGISTRY/app:1", "app:1"),
		"kind", "Deployment", "namespace", "team-a", "name", "demo", "requestID", "11111111-2222-3333-4444-555555555555")

	// Nothing to pin: unchanged, and nothing logged.
	pinned := e.pinned("REGISTRY/app:1", "app:1")
	h.Handle(context.Background(), request(t, review(t, admissionv1.Create, "team-a", deployment(nil, pinned), nil)))
	if got := testutil.ToFloat64(webhookAdmissions(t, reg, "unchanged")); got != 1 {
		t.Errorf("an image pinned already counted %v unchanged, want 1", got)
	}
	if n := len(logs.with("report mode: would pin")); n != 1 {
		t.Errorf("%d would-pin lines after an admission with nothing to pin, want 1", n)
	}
}

// webhookAdmissions gathers image_pin_admissions_total{outcome} as a collector.
func webhookAdmissions(t *testing.T, reg *prometheus.Registry, outcome string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != "image_pin_admissions_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == outcome {
					total += m.GetCounter().GetValue()
				}
			}
		}
	}
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "sum"})
	c.Add(total)
	return c
}

func TestEachFailureIsLoggedAtTheDefaultLevelWithItsCause(t *testing.T) {
	tests := []struct {
		name, image, policy string
		fault               func(w http.ResponseWriter, r *http.Request) bool
		result, admitted    string
	}{
		{"a tag that does not exist", "/app:nosuchtag", "", nil, "not_found", "left as written"},
		{"no tag meets the constraint", "/api", "policy:\n  strategy: semver\n  on_error: fail\n  images:\n  - prefix: REGISTRY/api\n    constraint: \"~9\"\n", nil, "not_found", "denied"},
		{"a registry that answers 503", "/app:1", "", func(w http.ResponseWriter, r *http.Request) bool {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return true
		}, "error", "left as written"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.setConfig(t, withPolicy(strings.ReplaceAll(tc.policy, "REGISTRY", e.srv.Host)))
			if tc.fault != nil {
				e.srv.SetFault(tc.fault)
			}
			var logs logLines
			h := webhook.NewHandler(func() *config.Config { return e.cfg.Load() }, e.res, webhook.WithLogger(logs.logger(0)))
			image := e.srv.Host + tc.image
			h.Handle(context.Background(), request(t, review(t, admissionv1.Create, "team-a", deployment(nil, image), nil)))
			lines := logs.with("image not resolved")
			if len(lines) != 1 {
				t.Fatalf("%d failure lines, want 1:\n%s", len(lines), &logs)
			}
			assertFields(t, lines[0], "container", "app", "image", image, "entry", "test", "result", tc.result,
				"admitted", tc.admitted, "kind", "Deployment", "namespace", "team-a", "name", "demo")
			if msg, _ := lines[0]["error"].(string); msg == "" {
				t.Errorf("the line gives no cause: %v", lines[0])
			}
		})
	}
}

// The minute is the limiter's: a failure of the same image and cause is
// logged once a minute however often it is admitted, with the count of the
// ones held back; another image, or another cause, has a minute of its own.
func TestAFailureIsLoggedOncePerImageAndCauseAMinute(t *testing.T) {
	// semver without a constraint fails before any registry request, so the
	// admissions run inside the bubble without a network.
	e := newEnv(t, withPolicy("policy:\n  strategy: semver\n"))
	synctest.Test(t, func(t *testing.T) {
		var logs logLines
		h := webhook.NewHandler(func() *config.Config { return e.cfg.Load() }, resolver.New(), webhook.WithLogger(logs.logger(0)))
		admit := func(image string) {
			h.Handle(context.Background(), request(t, review(t, admissionv1.Create, "team-a", deployment(nil, e.srv.Host+image), nil)))
		}
		failures := func() int { return len(logs.with("image not resolved")) }
		for range 5 {
			admit("/api:1.4.0")
		}
		if n := failures(); n != 1 {
			t.Fatalf("5 failures of one image logged %d lines, want 1:\n%s", n, &logs)
		}
		admit("/app:1")
		if n := failures(); n != 2 {
			t.Fatalf("another image's failure: %d lines, want 2", n)
		}
		time.Sleep(59 * time.Second)
		admit("/api:1.4.0")
		if n := failures(); n != 2 {
			t.Fatalf("within the minute: %d lines, want 2", n)
		}
		time.Sleep(time.Second)
		admit("/api:1.4.0")
		lines := logs.with("image not resolved")
		if len(lines) != 3 {
			t.Fatalf("a minute later: %d lines, want 3:\n%s", len(lines), &logs)
		}
		if got := lines[2]["suppressed"]; got != float64(5) {
			t.Errorf("suppressed = %v, want 5 (4 then 1 held back)", got)
		}
	})
}

// Through controller-runtime's webhook.Admission, every line of an
// admission carries the request's UID from its request-scoped logger, and
// debug adds one line per admission.
func TestLinesCarryTheRequestsUIDFromTheContextLogger(t *testing.T) {
	e := newEnv(t)
	var logs logLines
	h := webhook.NewHandler(func() *config.Config { return e.cfg.Load() }, e.res, webhook.WithLogger(logr.Discard()))
	wh := &admission.Webhook{Handler: h, LogConstructor: func(_ logr.Logger, req *admission.Request) logr.Logger {
		return admission.DefaultLogConstructor(logs.logger(1), req)
	}}
	srv := httptest.NewServer(wh)
	t.Cleanup(srv.Close)
	admissions := postAndAssertRequestFields(t, e.srv.Host, srv.URL, &logs)
	assertFields(t, admissions[0], "outcome", "patched", "kind", "Deployment")
}

// postAndAssertRequestFields posts two admissions to url (one pinned, one
// failing) and asserts that each line logs carries the request's UID,
// namespace, name, resource and user. It returns the admission lines.
func postAndAssertRequestFields(t *testing.T, registry, url string, logs *logLines) []map[string]any {
	t.Helper()
	for _, image := range []string{"/app:1", "/app:nosuchtag"} {
		resp, err := http.Post(url, "application/json", bytes.NewReader(review(t, admissionv1.Create, "team-a", deployment(nil, registry+image), nil)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	admissions, failures := logs.with("admission"), logs.with("image not resolved")
	if len(admissions) != 2 || len(failures) != 1 {
		t.Fatalf("%d admission and %d failure lines, want 2 and 1:\n%s", len(admissions), len(failures), logs)
	}
	for _, l := range append(admissions, failures...) {
		assertFields(t, l, "requestID", "11111111-2222-3333-4444-555555555555", "namespace", "team-a", "name", "demo")
		if res, _ := l["resource"].(map[string]any); res["resource"] != "deployments" {
			t.Errorf("resource = %v, want the request's (deployments) in %v", l["resource"], l)
		}
		if _, ok := l["user"]; !ok {
			t.Errorf("no user field in %v", l)
		}
	}
	return admissions
}
