package state

import (
	"context"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// The leader confirms a record that has not moved without writing it: the
// contract bounds writes to one per new answer plus one per record per
// refresh_window. What every replica needs to know, that the records in
// use were confirmed, it writes once per refresh pass into one Lease of
// its own, the heartbeat:
//   - spec.renewTime: the oldest confirmation of a record the pass covered;
//   - the annotation image-pin.io/refresh-pass: when the pass began (it
//     covered the records used, as their lastUsed said then, within two
//     refresh windows);
//   - the annotation image-pin.io/not-refreshed: the records it could not
//     confirm (a refresh error, a query the config no longer makes), or *
//     when they are too many to name.
//
// A replica's Load takes a covered record as confirmed at renewTime.
const (
	HeartbeatLease   = "image-pin-webhook-refreshed"
	passAnnotation   = "image-pin.io/refresh-pass"
	notAnnotation    = "image-pin.io/not-refreshed"
	maxNotRefreshed  = 500 // 21 KiB of names, well under the 256 KiB of an object's annotations
	allNotRefreshed  = "*"
	heartbeatTimeout = 10 * time.Second
)

// vouch is what a replica read from the heartbeat.
type vouch struct {
	through, pass time.Time
	not           map[string]bool
	none          bool // too many failed to name them: vouch for none
}

// covers reports whether the pass vouched for r: used, as the pass saw it,
// within two refresh windows before it began (so the pass refreshed it),
// and confirmed by it. A lastUsed written after the pass began is not what
// the pass saw: the one before it is, which tells a record in use (noted
// again after a window) from one idle until now (not refreshed).
func (v vouch) covers(name string, r record, window time.Duration) bool {
	if window <= 0 || v.none || v.through.IsZero() || v.not[name] {
		return false
	}
	used := usedAt(r)
	if used.After(v.pass) {
		used = r.usedBefore
	}
	return !used.IsZero() && !used.After(v.pass) && v.pass.Sub(used) < 2*window
}

// usedAt is when r was last used, to within a refresh window: lastUsed,
// else when it was last confirmed.
func usedAt(r record) time.Time {
	if !r.lastUsed.IsZero() {
		return r.lastUsed
	}
	return r.stored.At
}

func (c *Cluster) heard(obj any) {
	l, ok := obj.(*coordinationv1.Lease)
	if !ok || l.Name != HeartbeatLease || l.Spec.RenewTime == nil {
		return
	}
	v := vouch{through: l.Spec.RenewTime.Time, not: map[string]bool{}}
	pass, err := time.Parse(time.RFC3339Nano, l.Annotations[passAnnotation])
	if err != nil {
		c.setVouch(vouch{})
		return
	}
	v.pass = pass
	if n := l.Annotations[notAnnotation]; n == allNotRefreshed {
		v.none = true
	} else if n != "" {
		for _, name := range strings.Split(n, ",") {
			v.not[name] = true
		}
	}
	c.setVouch(v)
}

func (c *Cluster) setVouch(v vouch) {
	c.mu.Lock()
	c.vouch = v
	c.mu.Unlock()
}

// beat writes the heartbeat of a pass that began at pass: every record it
// covered was confirmed at through or later, except not.
func (c *Cluster) beat(ctx context.Context, holder string, pass, through time.Time, not []string) error {
	ctx, cancel := context.WithTimeout(ctx, heartbeatTimeout)
	defer cancel()
	names := strings.Join(not, ",")
	if len(not) > maxNotRefreshed {
		names = allNotRefreshed
	}
	l := &coordinationv1.Lease{}
	err := c.reader.Get(ctx, types.NamespacedName{Namespace: c.ns, Name: HeartbeatLease}, l)
	if apierrors.IsNotFound(err) {
		l = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: c.ns, Name: HeartbeatLease,
			Labels: map[string]string{"app.kubernetes.io/managed-by": "image-pin-webhook"}}}
	} else if err != nil {
		return err
	}
	if l.Annotations == nil {
		l.Annotations = map[string]string{}
	}
	l.Annotations[passAnnotation] = pass.UTC().Format(time.RFC3339Nano)
	l.Annotations[notAnnotation] = names
	l.Spec.HolderIdentity = &holder
	l.Spec.RenewTime = &metav1.MicroTime{Time: through}
	if l.ResourceVersion == "" {
		err = c.client.Create(ctx, l)
	} else {
		err = c.client.Update(ctx, l)
	}
	if err == nil {
		c.heard(l) // the leader's own Load need not wait for its watch
	}
	return err
}
