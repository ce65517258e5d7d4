package webhook

import "github.com/prometheus/client_golang/prometheus"

// Metrics counts admissions. A nil *Metrics records nothing.
type Metrics struct {
	admissions *prometheus.CounterVec
}

// NewMetrics registers the admission metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{admissions: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "image_pin_admissions_total",
		Help: "Admissions by kind, operation and outcome (patched, unchanged, denied, error).",
	}, []string{"kind", "operation", "outcome"})}
	reg.MustRegister(m.admissions)
	return m
}

func (m *Metrics) admission(kind, op, outcome string) {
	if m != nil {
		m.admissions.WithLabelValues(kind, op, outcome).Inc()
	}
}
