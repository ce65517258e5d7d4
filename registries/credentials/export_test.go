package credentials

import "time"

// WithClock sets the clock the script failure log is limited by.
func WithClock(now func() time.Time) Option { return func(c *Cache) { c.now = now } }

// LastStderrLine is lastStderrLine, for tests.
func LastStderrLine(b []byte) string { return lastStderrLine(b, "") }
