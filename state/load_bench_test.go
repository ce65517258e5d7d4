package state

import (
	"context"
	"fmt"
	"testing"

	"github.com/image-pin/image-pin-webhook/resolver"
)

// BenchmarkWarmLoadOf20Images is the store's part of a warm admission of a
// Pod of 20 images on --state cluster: 20 Loads of known records.
// Before the hashes were kept by query (c2d5d2c): 51µs and 140 allocations
// per 20 Loads on the 2-core VM; after: 28µs and 40.
func BenchmarkWarmLoadOf20Images(b *testing.B) {
	f := newFixture(&testing.T{}) // its cleanups do not run: the process ends after the benchmark
	c := f.store(nil)
	ctx := resolver.WithAdmission(context.Background(), resolver.Admission{Namespace: "team-a"})
	qs := make([]resolver.Query, 20)
	for i := range qs {
		qs[i] = f.query(fmt.Sprintf("bench-%d", i), "latest", "team-a")
		if _, err := c.Save(ctx, qs[i], "team-a", nil, stored(fmt.Sprintf("sha256:%064d", i))); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, q := range qs {
			if _, ok := c.Load(ctx, q, "team-a"); !ok {
				b.Fatal("no record")
			}
		}
	}
}
