package client

import "github.com/prometheus/client_golang/prometheus"

// Metrics counts what this package sends to registries. A nil *Metrics
// records nothing.
type Metrics struct {
	requests *prometheus.CounterVec
	up       *prometheus.GaugeVec
}

// NewMetrics registers the registry metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "image_pin_registry_requests_total",
			Help: "HTTP requests sent to registries, token requests included, by status code (error: no answer).",
		}, []string{"registry", "code"}),
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "image_pin_registry_up",
			Help: "1 when the last ping of the registry (GET /v2/ with its credentials) succeeded, else 0.",
		}, []string{"registry"}),
	}
	reg.MustRegister(m.requests, m.up)
	return m
}

func (m *Metrics) request(registry, code string) {
	if m != nil {
		m.requests.WithLabelValues(registry, code).Inc()
	}
}

func (m *Metrics) setUp(registry string, up bool) {
	if m == nil {
		return
	}
	v := 0.0
	if up {
		v = 1
	}
	m.up.WithLabelValues(registry).Set(v)
}
