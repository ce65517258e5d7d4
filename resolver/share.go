package resolver

import (
	"context"

	"github.com/image-pin/image-pin-webhook/registries/client"
)

type lookupShareKey struct{}

// withLookupShare marks ctx as the work of the shared lookup charged to s,
// so that a metadata read it starts is charged the same way and a lookup
// of another namespace that joins the read joins s.
func withLookupShare(ctx context.Context, s *client.Share) context.Context {
	return context.WithValue(ctx, lookupShareKey{}, s)
}

func lookupShareOf(ctx context.Context) *client.Share {
	s, _ := ctx.Value(lookupShareKey{}).(*client.Share)
	return s
}
