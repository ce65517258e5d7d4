package credentials

import (
	"context"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
)

// WithClock sets the clock the script failure log is limited by.
func WithClock(now func() time.Time) Option { return func(c *Cache) { c.now = now } }

// LastStderrLine is lastStderrLine, for tests.
func LastStderrLine(b []byte) string { return lastStderrLine(b, "") }

// Get is GetUntil without the expiry, for tests.
func (c *Cache) Get(ctx context.Context, src Source, o FetchOptions) (authn.AuthConfig, error) {
	auth, _, err := c.GetUntil(ctx, src, o)
	return auth, err
}

// ParseCredentialOutput reads what an ext: script printed, for the fuzzer.
func ParseCredentialOutput(out []byte) (authn.AuthConfig, error) {
	return parseUserPass(string(out), Source{Kind: KindExt})
}
