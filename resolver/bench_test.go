package resolver_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/image-pin/image-pin-webhook/resolver"
	"github.com/image-pin/image-pin-webhook/test/registrytest"
)

// BenchmarkWarmHit is a cache hit: what most admissions cost.
func BenchmarkWarmHit(b *testing.B) {
	srv := registrytest.New(b)
	srv.PushImage(b, "app:1")
	tgt := setupB(b, srv, "app")
	r := resolver.New()
	ctx := context.Background()
	if _, err := r.Resolve(ctx, query(tgt, "1", digestPolicy())); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := r.Resolve(ctx, query(tgt, "1", digestPolicy())); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkColdDigest is one manifest HEAD against the in-process registry
// (connections and the bearer-less transport warm).
func BenchmarkColdDigest(b *testing.B) {
	srv := registrytest.New(b)
	srv.PushImage(b, "app:1")
	tgt := setupB(b, srv, "app")
	r := resolver.New()
	ctx := context.Background()
	fresh := resolver.Policy{Strategy: resolver.Digest, CacheTTL: time.Minute, Fresh: true}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := r.Resolve(ctx, query(tgt, "1", fresh)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkColdSemver is a tag listing (50 tags) plus a HEAD.
func BenchmarkColdSemver(b *testing.B) {
	srv := registrytest.New(b)
	for i := range 50 {
		srv.PushImage(b, fmt.Sprintf("api:1.%d.0", i))
	}
	tgt := setupB(b, srv, "api")
	r := resolver.New()
	ctx := context.Background()
	con, _ := resolver.ParseConstraint("~1.4")
	p := resolver.Policy{Strategy: resolver.Semver, Constraint: con, CacheTTL: time.Minute, Fresh: true}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := r.Resolve(ctx, query(tgt, "", p)); err != nil {
			b.Fatal(err)
		}
	}
}
