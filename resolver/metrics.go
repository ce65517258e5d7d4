package resolver

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics records resolutions. A nil *Metrics records nothing.
type Metrics struct {
	resolutions *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	entries     *prometheus.GaugeVec
}

// NewMetrics registers the resolver metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		resolutions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "image_pin_resolutions_total",
			Help: "Image resolutions by registry, strategy and result (resolved, cache_hit, stale, not_found, unauthorized, error).",
		}, []string{"registry", "strategy", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "image_pin_resolve_duration_seconds",
			Help:    "Time to resolve one image, cache hits included.",
			Buckets: []float64{.0001, .0005, .001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"registry", "strategy"}),
		entries: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "image_pin_cache_entries",
			Help: "Entries held by each cache (answers, tags, metadata).",
		}, []string{"cache"}),
	}
	reg.MustRegister(m.resolutions, m.duration, m.entries)
	return m
}

func (m *Metrics) resolved(registry string, s Strategy, result string, start time.Time) {
	if m == nil {
		return
	}
	m.resolutions.WithLabelValues(registry, string(s), result).Inc()
	m.duration.WithLabelValues(registry, string(s)).Observe(time.Since(start).Seconds())
}

func (m *Metrics) cacheEntries(cache string, n int) {
	if m != nil {
		m.entries.WithLabelValues(cache).Set(float64(n))
	}
}
