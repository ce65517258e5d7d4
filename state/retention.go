package state

import (
	"context"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/image-pin/image-pin-webhook/api/v1alpha1"
)

// retentionOf is how long a record may go unused before it is deleted:
// record_retention, and never less than two of the intervals lastUsed is
// written at (a record in use may show a lastUsed that old), so that a
// retention shorter than refresh_window cannot delete records in use.
func retentionOf(l Limits) time.Duration {
	if l.RecordRetention <= 0 {
		return 0
	}
	return max(l.RecordRetention, 2*usedEvery(l))
}

// retire deletes ir when it has been unused for its retention, as of now,
// and reports whether it did. Only time retires a record: nothing a
// namespace does (its bound, its own records) deletes another's. The
// delete is conditional on the version seen, so a record used or
// refreshed meanwhile stays.
func (c *Cluster) retire(ctx context.Context, ir *v1alpha1.ImageResolution, l Limits, now time.Time) bool {
	keep := retentionOf(l)
	if keep <= 0 || now.Sub(usedOf(ir)) < keep {
		return false
	}
	target := &v1alpha1.ImageResolution{ObjectMeta: metav1.ObjectMeta{Namespace: ir.Namespace, Name: ir.Name}}
	err := c.client.Delete(ctx, target, client.Preconditions{UID: &ir.UID, ResourceVersion: &ir.ResourceVersion})
	switch {
	case err == nil:
		c.metrics.write("deleted", nil)
		c.forget(ir)
		c.log.V(1).Info("deleted a record unused for record_retention", "record", ir.Name, "image", ir.Spec.Image, "lastUsed", usedOf(ir))
		return true
	case apierrors.IsNotFound(err), apierrors.IsConflict(err):
		return false // gone already, or used since
	default:
		c.metrics.write("error", err)
		c.log.Info("cannot delete a record unused for record_retention", "record", ir.Name, "error", err.Error())
		return false
	}
}
