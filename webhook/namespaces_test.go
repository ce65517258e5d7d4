package webhook_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionv1 "k8s.io/api/admission/v1"

	"github.com/image-pin/image-pin-webhook/config"
	"github.com/image-pin/image-pin-webhook/webhook"
)

// fakeGate opts in the namespaces it lists, fails with err for the others
// when err is set, and counts what it is asked.
type fakeGate struct {
	optedIn map[string]bool
	err     error
	mu      sync.Mutex
	asked   []string
}

func (g *fakeGate) OptedIn(ctx context.Context, name string) (bool, error) {
	g.mu.Lock()
	g.asked = append(g.asked, name)
	g.mu.Unlock()
	if _, ok := ctx.Deadline(); !ok {
		return false, errors.New("the gate was given no deadline")
	}
	if g.optedIn[name] {
		return true, nil
	}
	return false, g.err
}

type unreachable struct{}

func (unreachable) Error() string               { return "connection refused" }
func (unreachable) NamespacesUnreachable() bool { return true }

func TestTheNamespaceGateLeavesReviewsForNamespacesNotOptedInAloneBeforeAnyLookup(t *testing.T) {
	for _, tc := range []struct {
		name        string
		policy      string
		ns          string
		gateErr     error
		wantPinned  bool
		wantAllowed bool
		wantReason  string // in the allowed response's message
		wantWarning string
		wantRefusal string // the result counted
	}{
		{name: "an opted-in namespace is pinned", ns: "team-a", wantPinned: true, wantAllowed: true},
		{name: "a made-up or unlabelled namespace is allowed unchanged with a reason", ns: "made-up",
			wantAllowed: true, wantReason: "is not opted in", wantRefusal: "not_opted_in"},
		{name: "a gate that cannot tell under on_error ignore admits unchanged with a warning", ns: "new-ns", gateErr: errors.New("rate-limited"),
			wantAllowed: true, wantWarning: "cannot tell whether namespace", wantRefusal: "unverified"},
		{name: "a gate that cannot tell under on_error fail denies", policy: "policy:\n  on_error: fail\n", ns: "new-ns", gateErr: errors.New("rate-limited"),
			wantReason: "cannot tell whether namespace", wantRefusal: "unverified"},
		{name: "a gate with no view of namespaces at all (the API server unreachable) under on_error ignore pins with a warning", ns: "new-ns",
			gateErr: unreachable{}, wantPinned: true, wantAllowed: true, wantWarning: "resolved as in an opted-in namespace", wantRefusal: "unverified"},
		{name: "a gate with no view of namespaces at all under on_error fail denies", policy: "policy:\n  on_error: fail\n", ns: "new-ns",
			gateErr: unreachable{}, wantReason: "cannot tell whether namespace", wantRefusal: "unverified"},
		{name: "a gate that cannot tell in report mode only warns, as registry failures do", policy: "policy:\n  on_error: fail\n  mode: report\n", ns: "new-ns",
			gateErr: errors.New("rate-limited"), wantAllowed: true, wantWarning: "cannot tell whether namespace", wantRefusal: "unverified"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, withPolicy(tc.policy))
			g := &fakeGate{optedIn: map[string]bool{"team-a": true}, err: tc.gateErr}
			reg := prometheus.NewRegistry()
			var logs logLines
			h := webhook.NewHandler(func() *config.Config { return e.cfg.Load() }, e.res, webhook.WithNamespaceGate(g),
				webhook.WithHandlerMetrics(webhook.NewMetrics(reg)), webhook.WithLogger(logs.logger(0)))
			e.srv.Reset()
			resp := h.Handle(context.Background(), request(t, review(t, admissionv1.Create, tc.ns, deployment(nil, e.srv.Host+"/app:1"), nil)))
			if resp.Allowed != tc.wantAllowed {
				t.Fatalf("allowed %v, want %v: %+v", resp.Allowed, tc.wantAllowed, resp.Result)
			}
			if got := len(resp.Patches) > 0; got != tc.wantPinned {
				t.Fatalf("patched %v, want %v: %v", got, tc.wantPinned, resp.Patches)
			}
			if !tc.wantPinned && e.srv.Total() != 0 {
				t.Fatalf("%d registry requests for a review the gate stopped, want 0: %v", e.srv.Total(), e.srv.Received())
			}
			if tc.wantReason != "" && (resp.Result == nil || !strings.Contains(resp.Result.Message, tc.wantReason)) {
				t.Fatalf("result %+v, want one saying %q", resp.Result, tc.wantReason)
			}
			if tc.wantWarning != "" && !strings.Contains(strings.Join(resp.Warnings, "\n"), tc.wantWarning) {
				t.Fatalf("warnings %q, want one saying %q", resp.Warnings, tc.wantWarning)
			}
			if len(g.asked) != 1 || g.asked[0] != tc.ns {
				t.Fatalf("the gate was asked %q, want once for %q", g.asked, tc.ns)
			}
			if tc.wantRefusal != "" {
				if got := testutil.ToFloat64(refusedCounter(t, reg, tc.wantRefusal)); got != 1 {
					t.Fatalf("image_pin_namespace_gate_total{result=%q} = %v, want 1", tc.wantRefusal, got)
				}
				if !strings.Contains(logs.String(), `"reviewNamespace":"`+tc.ns+`"`) {
					t.Fatalf("no default-level log line names namespace %s:\n%s", tc.ns, logs.String())
				}
			}
		})
	}
}

func TestTheGateIsNotAskedForWhatOtherGatesLeaveAlone(t *testing.T) {
	e := newEnv(t)
	g := &fakeGate{}
	h := webhook.NewHandler(func() *config.Config { return e.cfg.Load() }, e.res, webhook.WithNamespaceGate(g),
		webhook.WithOwnNamespace("image-pin-system"))
	for _, ns := range []string{"kube-system", "image-pin-system"} {
		resp := h.Handle(context.Background(), request(t, review(t, admissionv1.Create, ns, deployment(nil, e.srv.Host+"/app:1"), nil)))
		if !resp.Allowed || len(resp.Patches) != 0 {
			t.Fatalf("%s: allowed %v with %d patches, want allowed unchanged", ns, resp.Allowed, len(resp.Patches))
		}
	}
	skipped := deployment(nil, e.srv.Host+"/app:1")
	skipped.Labels = map[string]string{webhook.SkipLabel: "true"}
	h.Handle(context.Background(), request(t, review(t, admissionv1.Create, "made-up", skipped, nil)))
	if len(g.asked) != 0 {
		t.Fatalf("the gate was asked %q, want never: protected namespaces and skipped objects need no API request", g.asked)
	}
}

func TestAFloodOfForgedReviewsLogsABoundedNumberOfLines(t *testing.T) {
	e := newEnv(t)
	synctest.Test(t, func(t *testing.T) {
		var logs logLines
		h := webhook.NewHandler(func() *config.Config { return e.cfg.Load() }, e.res, webhook.WithNamespaceGate(&fakeGate{}),
			webhook.WithLogger(logs.logger(0)))
		flood := func(n int) {
			for i := range n {
				ns := "made-up-" + strings.Repeat("x", i%7)
				h.Handle(context.Background(), request(t, review(t, admissionv1.Create, ns, deployment(nil, e.srv.Host+"/app:1"), nil)))
			}
		}
		lines := func() []map[string]any {
			logs.mu.Lock()
			defer logs.mu.Unlock()
			return append([]map[string]any(nil), logs.lines...)
		}
		flood(200)
		if n := len(lines()); n != 5 {
			t.Fatalf("%d log lines for 200 forged reviews at once, want the burst of 5", n)
		}
		time.Sleep(10 * time.Second)
		flood(1)
		got := lines()
		if len(got) != 6 {
			t.Fatalf("%d log lines after 10s and one more review, want 6", len(got))
		}
		if held := got[5]["suppressed"]; held != float64(195) {
			t.Fatalf("the line after the flood says suppressed %v, want 195: %v", held, got[5])
		}
	})
}

func refusedCounter(t *testing.T, reg *prometheus.Registry, reason string) prometheus.Collector {
	t.Helper()
	return &gathered{reg: reg, name: "image_pin_namespace_gate_total", label: reason}
}

// gathered is one series of reg, read through Gather, as a Collector for
// testutil.ToFloat64.
type gathered struct {
	reg         *prometheus.Registry
	name, label string
}

func (g *gathered) Describe(ch chan<- *prometheus.Desc) {}

func (g *gathered) Collect(ch chan<- prometheus.Metric) {
	mfs, _ := g.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != g.name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetValue() == g.label {
					ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(g.name, "", nil, nil), prometheus.CounterValue, m.GetCounter().GetValue())
				}
			}
		}
	}
}
