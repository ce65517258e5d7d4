package resolver

import (
	"context"
	"fmt"
	"sync"

	"github.com/image-pin/image-pin-webhook/registries/client"
)

// byteBudget bounds the bytes of manifests and config blobs the resolver
// reads and decodes at once. Each read is bounded (maxManifestBytes,
// maxConfigBytes), but not how many run at once: one Pod of 32 containers
// under newest-build runs 32 lookups of 8 workers each, and a tenant may
// push manifests of nearly 4 MiB (and indexes of 10,000 entries, which
// decode into several times their size), so one admission held hundreds of
// MiB at once, past the chart's memory limit. A read takes its length
// (Content-Length; unknownLengthCharge when the registry sends none, and
// the cap for a second read of one longer than that; a config its
// declared size) from the budget before its body is read and gives it back
// once it is decoded. One namespace holds at most perTenant of it, so one
// tenant's reads (or a registry of its own that trickles a body until the
// deadline) wait behind each other, not behind another's.
type byteBudget struct {
	total, perTenant int64

	mu       sync.Mutex
	used     int64
	byTenant map[string]int64
	// short counts the admissions' reads waiting for the total (not for
	// their own share): while any does, the background takes nothing.
	short int
	freed chan struct{} // closed (and replaced) whenever a waiter should try again
}

func newByteBudget(total, perTenant int64) *byteBudget {
	return &byteBudget{total: total, perTenant: perTenant, byTenant: map[string]int64{}, freed: make(chan struct{})}
}

// acquire waits until n bytes (at most perTenant) are free for the tenant
// ctx's work is charged to, or ctx ends; release gives them back. what
// names the read for the error.
//
// The tenant is the registry rate limit's (client.ChargeOf): a shared
// lookup's reads are its starter's while it alone waits on them, and the
// neutral share's once another namespace joins, so a namespace that keeps
// its own share full and starts a read another namespace needs does not
// hold that namespace in its queue; a read waiting when the lookup is
// joined tries again in the neutral share. A refresh ahead of use is
// charged to client.BackgroundTenant, a share of its own, not to the
// namespace of the record it refreshes, and takes only bytes no admission
// waits for: while an admission's read waits for the total, the
// background's wait, so a refresh delays an admission by at most the bytes
// it already holds. Whatever the tenant, the total stays within total.
func (b *byteBudget) acquire(ctx context.Context, n int64, what string) (release func(), err error) {
	n = max(min(n, b.perTenant), 1)
	short := false // an admission's read counted in b.short
	defer func() {
		b.mu.Lock()
		b.setShort(&short, false)
		b.mu.Unlock()
	}()
	for {
		tenant, joined := client.ChargeOf(ctx)
		b.mu.Lock()
		roomy := b.used+n <= b.total
		if roomy && b.byTenant[tenant]+n <= b.perTenant && (tenant != client.BackgroundTenant || b.short == 0) {
			b.used += n
			b.byTenant[tenant] += n
			b.mu.Unlock()
			var once sync.Once
			return func() { once.Do(func() { b.release(tenant, n) }) }, nil
		}
		b.setShort(&short, !roomy && tenant != client.BackgroundTenant)
		freed := b.freed
		b.mu.Unlock()
		select {
		case <-freed:
		case <-joined: // charged to the neutral share now
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting to read %s: manifests and configs are read at most %d MiB at once, %d MiB per namespace: %w",
				what, b.total>>20, b.perTenant>>20, ctx.Err())
		}
	}
}

// setShort records, under b.mu, whether an admission's read waits for the
// total; once none does, the background's reads waiting are woken.
func (b *byteBudget) setShort(counted *bool, now bool) {
	if *counted == now {
		return
	}
	if *counted = now; now {
		b.short++
		return
	}
	if b.short--; b.short == 0 {
		b.wake()
	}
}

func (b *byteBudget) release(tenant string, n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
	if b.byTenant[tenant] -= n; b.byTenant[tenant] == 0 {
		delete(b.byTenant, tenant)
	}
	b.wake()
}

// wake wakes, under b.mu, every read waiting to try again.
func (b *byteBudget) wake() {
	close(b.freed)
	b.freed = make(chan struct{})
}
