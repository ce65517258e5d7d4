package webhook

// Test-only API, visible to the webhook_test package alone.

// WithMaxInFlight sets how many admissions may look up images at once
// (DefaultMaxInFlight); one namespace holds at most a quarter of them.
func WithMaxInFlight(n int) Option { return func(h *Handler) { h.inFlight = newInFlight(n) } }
