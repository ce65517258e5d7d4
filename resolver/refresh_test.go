package resolver_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/image-pin/image-pin-webhook/resolver"
	"github.com/image-pin/image-pin-webhook/test/registrytest"
)

func TestARefreshLooksUpPastAFreshAnswerAndStoresBeforeMemoryServesIt(t *testing.T) {
	srv := registrytest.New(t)
	first := srv.PushImage(t, "app:latest")
	q := query(setup(t, srv, "app"), "latest", digestPolicy())
	r := resolver.New()
	if res, err := r.Resolve(ctxFor(t, 10*time.Second), q); err != nil || res.Digest != first {
		t.Fatalf("first resolve: %+v, %v", res, err)
	}
	moved := srv.PushImage(t, "app:latest")
	srv.Reset()
	var saved []string
	got, err := r.Refresh(ctxFor(t, 10*time.Second), q, "team-a", func(_ context.Context, a resolver.Stored) (resolver.Stored, error) {
		// Memory does not give it yet: the record is written first.
		if res, _ := r.LastKnown(q); res.Digest != first {
			t.Errorf("memory gave %s before the store had it", res.Digest)
		}
		saved = append(saved, a.Digest)
		return a, nil
	})
	if err != nil || got.Digest != moved || len(saved) != 1 || saved[0] != moved {
		t.Fatalf("refresh: %+v, %v; saved %q; want %s", got, err, saved, moved)
	}
	if n := srv.Count(http.MethodHead, "manifest"); n != 1 {
		t.Fatalf("the refresh made %d manifest HEADs past the fresh answer, want 1", n)
	}
	if res, err := r.Resolve(ctxFor(t, 10*time.Second), q); err != nil || res.Digest != moved || !res.Cached {
		t.Fatalf("after the refresh: %+v, %v; want the moved %s from memory", res, err, moved)
	}
}

func TestARefreshGivesTheAnswerTheStoreHeld(t *testing.T) {
	srv := registrytest.New(t)
	srv.PushImage(t, "app:latest")
	q := query(setup(t, srv, "app"), "latest", digestPolicy())
	r := resolver.New()
	newer := resolver.Stored{Tag: "latest", Digest: "sha256:0123456789012345678901234567890123456789012345678901234567890123"}
	got, err := r.Refresh(ctxFor(t, 10*time.Second), q, "team-a", func(context.Context, resolver.Stored) (resolver.Stored, error) {
		return newer, nil // another replica stored a newer answer first
	})
	if err != nil || got.Digest != newer.Digest {
		t.Fatalf("refresh: %+v, %v; want the store's %s", got, err, newer.Digest)
	}
	if res, _ := r.LastKnown(q); res.Digest != newer.Digest {
		t.Fatalf("memory holds %s, want the store's %s", res.Digest, newer.Digest)
	}
}
