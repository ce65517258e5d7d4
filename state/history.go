package state

import (
	"context"

	"k8s.io/apimachinery/pkg/types"

	"github.com/image-pin/image-pin-webhook/api/v1alpha1"
	"github.com/image-pin/image-pin-webhook/resolver"
)

// Gave reports whether q's record, when q's entry admits ns, gives tag and
// digest or gave them before (status.history, the last
// v1alpha1.MaxHistory): what the webhook answered for q, whichever replica
// answered and whether or not this process did (resolver.History). Read
// from the informer's cache, never with a request; only an UPDATE whose
// stored pin memory does not know (a re-apply, an added opt-out) asks.
func (c *Cluster) Gave(ctx context.Context, q resolver.Query, ns, tag, digest string) bool {
	if e := q.Target.Entry; e != nil && !e.AllowsNamespace(ns) {
		return false
	}
	hash := c.hashes.of(q)
	ir := &v1alpha1.ImageResolution{}
	if err := c.cache.Get(ctx, types.NamespacedName{Namespace: c.ns, Name: nameOf(hash)}, ir); err != nil || ir.Spec.QueryHash != hash {
		return false
	}
	if ir.Status.Digest == digest && ir.Status.Tag == tag {
		return true
	}
	for _, h := range ir.Status.History {
		if h.Digest == digest && h.Tag == tag {
			return true
		}
	}
	return false
}

var _ resolver.History = (*Cluster)(nil)
