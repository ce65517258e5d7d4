package webhook

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts admissions. A nil *Metrics records nothing.
type Metrics struct {
	admissions *prometheus.CounterVec
	refused    *prometheus.CounterVec
	gated      *prometheus.CounterVec
}

// NewMetrics registers the admission metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{admissions: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "image_pin_admissions_total",
		Help: "Admissions by kind, operation and outcome (patched, reported (report mode: would have patched), unchanged, denied, error).",
	}, []string{"kind", "operation", "outcome"}),
		// Not an outcome of image_pin_admissions_total: a refused admission
		// still ends patched (the last known digest), unchanged or denied as
		// on_error says, and is counted there as such too.
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "image_pin_admissions_refused_total",
			Help: "Admissions answered without a lookup because they were past an in-flight bound: reason namespace_share (the namespace's quarter), webhook_bound (the webhook's) or body_bytes (the request bodies in flight on the admission port: answered 429 unread).",
		}, []string{"reason"}),
		gated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "image_pin_namespace_gate_total",
			Help: "Admissions left alone before any lookup by the namespace gate: result not_opted_in (the namespace does not exist or lacks image-pin.io/enabled=true: a forged review, or one that raced a label change) or unverified (the gate could not tell in time: on_error decides).",
		}, []string{"result"})}
	reg.MustRegister(m.admissions, m.refused, m.gated)
	for _, r := range []string{gatedNotOptedIn, gatedUnverified} {
		m.gated.WithLabelValues(r)
	}
	for _, r := range []string{refusedShare, refusedBound, refusedBodies} {
		m.refused.WithLabelValues(r) // present at 0, so that rate() and alerts see the first refusal
	}
	return m
}

// The reasons of image_pin_admissions_refused_total.
const (
	refusedShare = "namespace_share"
	refusedBound = "webhook_bound"
	// refusedBodies: the admission port's request bodies in flight were at
	// their bound (bodies.go), so the review was not read.
	refusedBodies = "body_bytes"
)

// The results of image_pin_namespace_gate_total.
const (
	gatedNotOptedIn = "not_opted_in"
	gatedUnverified = "unverified"
)

func (m *Metrics) gate(result string) {
	if m != nil {
		m.gated.WithLabelValues(result).Inc()
	}
}

func (m *Metrics) refusal(reason string) {
	if m != nil {
		m.refused.WithLabelValues(reason).Inc()
	}
}

func (m *Metrics) admission(kind, op, outcome string) {
	if m != nil {
		if !supportedKind(kind) {
			kind = "other"
		}
		m.admissions.WithLabelValues(kind, label(op, knownOperations), outcome).Inc()
	}
}

// NewBuildInfo registers image_pin_build_info, 1 with the binary's version
// and the Go release it was built with, as Prometheus' own build_info does:
// a dashboard joins on it to show which release each replica runs.
func NewBuildInfo(reg prometheus.Registerer, version string) {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "image_pin_build_info",
		Help: "1, labelled with the version of image-pin-webhook and the Go release it was built with.",
	}, []string{"version", "go_version"})
	g.WithLabelValues(version, runtime.Version()).Set(1)
	reg.MustRegister(g)
}

// The label values an AdmissionReview may bring (kinds: the table in
// kinds.go): anything else is counted as "other", so that reviews forged
// with made-up kinds and operations cannot create series without bound.
var (
	knownOperations = map[string]bool{"CREATE": true, "UPDATE": true, "DELETE": true, "CONNECT": true}
)

func label(v string, known map[string]bool) string {
	if known[v] {
		return v
	}
	return "other"
}
