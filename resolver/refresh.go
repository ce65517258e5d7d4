package resolver

import (
	"context"

	"github.com/image-pin/image-pin-webhook/registries/client"
)

// refreshKey marks a context as a refresh ahead of use.
type refreshKey struct{}

// shareTenant is whom a shared lookup started by ctx's caller charges the
// registry's rate limit and the read budget to: a refresh takes only the
// tokens and bytes admissions do not want (client.BackgroundTenant) until
// an admission joins it.
func shareTenant(ctx context.Context) string {
	if ctx.Value(refreshKey{}) != nil {
		return client.BackgroundTenant
	}
	return client.TenantOf(ctx)
}

// Refresh re-resolves q ahead of use, for the leader's refresher (state):
// it bypasses the fresh answer and tag list, runs at a lower priority than
// admissions under the registry's limit and the read budget (its bytes are
// the background's, not ns's: see byteBudget.acquire), and calls save with the answer
// before memory holds it and before any admission that joined the lookup
// gets it, as an admission's lookup stores its answer first. ns is the
// namespace the answer is kept in memory for (the record's).
//
// An admission's lookup of q already in flight is joined instead (save is
// then not called: that lookup stores its own answer). Refresh counts no
// resolution: image_pin_resolutions_total stays the admissions'.
func (r *Resolver) Refresh(ctx context.Context, q Query, ns string, save func(context.Context, Stored) (Stored, error)) (Stored, error) {
	q.Policy.Fresh = true
	ctx = client.WithTenant(context.WithValue(ctx, refreshKey{}, true), ns)
	a, err := r.share(ctx, q.key(), func(lctx context.Context) (answer, error) {
		a, err := r.lookup(lctx, q)
		if err != nil {
			return a, err
		}
		got, err := save(lctx, Stored{Tag: a.tag, Digest: a.digest})
		if err == nil {
			a.tag, a.digest = got.Tag, got.Digest // another replica's newer answer
		}
		// A failed write is save's to report: the registry's answer is
		// still right, and memory serves it (recall stores it again
		// before serving it, or serves the record's).
		return a, nil
	})
	if err != nil {
		return Stored{}, err
	}
	return Stored{Tag: a.tag, Digest: a.digest, At: a.at}, nil
}
