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
		m.admissions.WithLabelValues(label(kind, knownKinds), label(op, knownOperations), outcome).Inc()
	}
}

// The label values an AdmissionReview may bring: anything else is counted
// as "other", so that reviews forged with made-up kinds and operations
// cannot create series without bound.
var (
	knownKinds = map[string]bool{"Pod": true, "PodTemplate": true, "ReplicationController": true,
		"Deployment": true, "StatefulSet": true, "DaemonSet": true, "ReplicaSet": true, "Job": true, "CronJob": true}
	knownOperations = map[string]bool{"CREATE": true, "UPDATE": true, "DELETE": true, "CONNECT": true}
)

func label(v string, known map[string]bool) string {
	if known[v] {
		return v
	}
	return "other"
}
