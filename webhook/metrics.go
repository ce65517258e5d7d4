package webhook

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts admissions. A nil *Metrics records nothing.
type Metrics struct {
	admissions *prometheus.CounterVec
}

// NewMetrics registers the admission metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{admissions: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "image_pin_admissions_total",
		Help: "Admissions by kind, operation and outcome (patched, reported (report mode: would have patched), unchanged, denied, error).",
	}, []string{"kind", "operation", "outcome"})}
	reg.MustRegister(m.admissions)
	return m
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
