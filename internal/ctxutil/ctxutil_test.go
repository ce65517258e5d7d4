package ctxutil_test

import (
	"context"
	"testing"
	"time"

	"github.com/image-pin/image-pin-webhook/internal/ctxutil"
)

type key struct{}

func TestADetachedContextOutlivesItsParentsCancellation(t *testing.T) {
	deadline := time.Now().Add(time.Hour)
	parent, cancel := context.WithDeadline(context.WithValue(context.Background(), key{}, "v"), deadline)
	tests := []struct {
		name         string
		detach       func(context.Context) (context.Context, context.CancelFunc)
		wantDeadline time.Time
	}{
		{"Detach keeps the parent's deadline", ctxutil.Detach, deadline},
		{"DetachFor bounds it by its own duration", func(ctx context.Context) (context.Context, context.CancelFunc) {
			return ctxutil.DetachFor(ctx, time.Minute)
		}, time.Now().Add(time.Minute)},
	}
	var detached []context.Context
	for _, tc := range tests {
		d, dcancel := tc.detach(parent)
		defer dcancel()
		dl, ok := d.Deadline()
		if !ok || dl.Sub(tc.wantDeadline).Abs() > 5*time.Second {
			t.Errorf("%s: deadline %v, want about %v", tc.name, dl, tc.wantDeadline)
		}
		if d.Value(key{}) != "v" {
			t.Errorf("%s: the parent's values did not carry over", tc.name)
		}
		detached = append(detached, d)
	}
	cancel()
	for i, d := range detached {
		if d.Err() != nil {
			t.Errorf("%s: cancelled with its parent: %v", tests[i].name, d.Err())
		}
	}
}

func TestDetachingAContextWithoutADeadlineBoundsIt(t *testing.T) {
	d, cancel := ctxutil.Detach(context.Background())
	defer cancel()
	if dl, ok := d.Deadline(); !ok || time.Until(dl) > ctxutil.DefaultBound {
		t.Errorf("deadline %v (set: %v), want within %s", dl, ok, ctxutil.DefaultBound)
	}
}
