package state

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the records' gauges and counters. A nil *Metrics records
// nothing.
type Metrics struct {
	state   *prometheus.GaugeVec
	recs    *prometheus.GaugeVec
	writes  *prometheus.CounterVec
	refresh *prometheus.CounterVec
	skips   *prometheus.CounterVec
}

// NewMetrics registers the state metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "image_pin_state",
			Help: "Where resolution records live: 1 for the backend in use (cluster, memory).",
		}, []string{"backend"}),
		recs: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "image_pin_records",
			Help: "ImageResolution records this replica sees, by registry entry.",
		}, []string{"registry"}),
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "image_pin_record_writes_total",
			Help: "Record writes by result (created, updated, used, deleted: past record_retention, conflict, memory_only: past max_records_per_namespace, memory_only_max_records: past max_records, error).",
		}, []string{"result"}),
		refresh: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "image_pin_refreshes_total",
			Help: "Refreshes ahead of use by the leader, by registry and result (unchanged, moved, error).",
		}, []string{"registry", "result"}),
		skips: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "image_pin_refresh_skips_total",
			Help: "Records the leader does not refresh ahead of use (imagepullsecrets entries, queries the config no longer makes), once per record version, by registry.",
		}, []string{"registry"}),
	}
	reg.MustRegister(m.state, m.recs, m.writes, m.refresh, m.skips)
	return m
}

// Backend sets image_pin_state: 1 for backend, 0 for the other.
func (m *Metrics) Backend(backend string) {
	if m == nil {
		return
	}
	for _, b := range []string{"cluster", "memory"} {
		v := 0.0
		if b == backend {
			v = 1
		}
		m.state.WithLabelValues(b).Set(v)
	}
}

func (m *Metrics) records(registry string, delta float64) {
	if m != nil {
		m.recs.WithLabelValues(registry).Add(delta)
	}
}

func (m *Metrics) write(result string, err error) {
	if m == nil {
		return
	}
	if err != nil && result != "error" {
		result = "error"
	}
	m.writes.WithLabelValues(result).Inc()
}

func (m *Metrics) refreshed(registry, result string) {
	if m != nil {
		m.refresh.WithLabelValues(registry, result).Inc()
	}
}

func (m *Metrics) skipped(registry string) {
	if m != nil {
		m.skips.WithLabelValues(registry).Inc()
	}
}
