package resolver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/image-pin/image-pin-webhook/registries/client"
)

// heldBodies is a transport whose every manifest answer is a body of size
// bytes (with or without a Content-Length) that blocks at its first read
// until open is closed; reading counts the bodies being read at once.
type heldBodies struct {
	body    []byte
	chunked bool
	open    chan struct{}
	reading atomic.Int64
	most    atomic.Int64
}

func (h *heldBodies) RoundTrip(req *http.Request) (*http.Response, error) {
	n := int64(len(h.body))
	if h.chunked {
		n = -1
	}
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Length": {strconv.Itoa(len(h.body))}},
		ContentLength: n, Body: &heldBody{h: h, r: bytes.NewReader(h.body)}, Request: req}, nil
}

type heldBody struct {
	h       *heldBodies
	r       *bytes.Reader
	started bool
}

func (b *heldBody) Read(p []byte) (int, error) {
	if !b.started {
		b.started = true
		if now := b.h.reading.Add(1); now > b.h.most.Load() {
			b.h.most.Store(now)
		}
		<-b.h.open
	}
	return b.r.Read(p)
}

func (b *heldBody) Close() error {
	if b.started {
		b.h.reading.Add(-1)
	}
	return nil
}

// One Pod of 32 containers under newest-build reads up to 256 manifests at
// once, each up to 4 MiB (an index of 10,000 entries decodes into several
// times that): the bytes being read are bounded across the webhook and per
// namespace, and one namespace's reads never wait behind another's.
func TestManifestsBeingReadAreBoundedInBytesPerNamespace(t *testing.T) {
	for _, tc := range []struct {
		name    string
		chunked bool
	}{
		{"with a Content-Length", false},
		{"sent without a length, counted at the cap", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				body := []byte(`{"schemaVersion":2,"pad":"` + strings.Repeat("x", 1<<20) + `"}`)
				ref, err := name.NewDigest(fmt.Sprintf("reg.example/tenant/app@sha256:%x", sha256.Sum256(body)))
				if err != nil {
					t.Fatal(err)
				}
				h := &heldBodies{body: body, chunked: tc.chunked, open: make(chan struct{})}
				r := New()
				var wg sync.WaitGroup
				read := func(tenant string) {
					defer wg.Done()
					ctx := client.WithTenant(context.Background(), tenant)
					if err := r.readManifest(ctx, h, ref, func([]byte) error { return nil }); err != nil {
						t.Errorf("%s: %v", tenant, err)
					}
				}
				for range 32 {
					wg.Add(1)
					go read("tenant-a")
				}
				synctest.Wait()
				perTenant := int64(maxReadBytesPerNamespace / len(body))
				if tc.chunked {
					perTenant = 1 // a body without a length counts as the cap
				}
				if got := h.reading.Load(); got != perTenant {
					t.Errorf("%d of one namespace's manifests of %d bytes are being read at once, want %d (%d MiB per namespace)", got, len(body), perTenant, maxReadBytesPerNamespace>>20)
				}
				wg.Add(1)
				go read("tenant-b")
				synctest.Wait()
				if got := h.reading.Load(); got != perTenant+1 {
					t.Errorf("another namespace's read waits behind the first's: %d bodies being read, want %d", got, perTenant+1)
				}
				close(h.open)
				wg.Wait()
				if most := h.most.Load(); most > perTenant+1 {
					t.Errorf("%d bodies read at once, want at most %d", most, perTenant+1)
				}
			})
		})
	}
}

// A namespace that keeps its share of the read budget full (newest-build
// over manifests near the cap in its own repository) and starts the read of
// an image another namespace's lookup then joins does not hold that lookup
// in its own queue: the joined read is charged to the neutral share, as the
// registry's rate limit charges it; and a refresh ahead of use is charged to
// the background, not to the namespace whose record it refreshes.
func TestAReadAnotherNamespaceJoinsDoesNotWaitInItsStartersShare(t *testing.T) {
	for _, tc := range []struct {
		name    string
		starter string // the shared read's starter, as Resolver.share charges it
		join    string // the namespace that joins it, "" for none
	}{
		{"a lookup of another namespace joins it", "tenant-b", "tenant-a"},
		{"it is a refresh of that namespace's record", client.BackgroundTenant, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				// Sent without a length: each read counts as the cap, a
				// namespace's whole share.
				body := []byte(`{"schemaVersion":2}`)
				ref, err := name.NewDigest(fmt.Sprintf("reg.example/tenant/app@sha256:%x", sha256.Sum256(body)))
				if err != nil {
					t.Fatal(err)
				}
				h := &heldBodies{body: body, chunked: true, open: make(chan struct{})}
				r := New()
				var wg sync.WaitGroup
				read := func(ctx context.Context) {
					defer wg.Done()
					if err := r.readManifest(ctx, h, ref, func([]byte) error { return nil }); err != nil {
						t.Error(err)
					}
				}
				wg.Add(1)
				go read(client.WithTenant(context.Background(), "tenant-b")) // fills tenant-b's share
				synctest.Wait()
				sh := client.NewShare(tc.starter)
				wg.Add(1)
				go read(client.WithShare(client.WithTenant(context.Background(), "tenant-b"), sh))
				synctest.Wait()
				if tc.join != "" {
					if got := h.reading.Load(); got != 1 {
						t.Fatalf("%d bodies being read before anyone joined, want 1: tenant-b's share is full", got)
					}
					sh.Join(tc.join)
					synctest.Wait()
				}
				if got := h.reading.Load(); got != 2 {
					t.Errorf("%d bodies being read, want 2: the shared read waits in tenant-b's full share", got)
				}
				close(h.open)
				wg.Wait()
			})
		})
	}
}

// A refresh takes only the read budget no admission waits for: when bytes
// are given back while both an admission's read and a refresh's wait for
// the total, the admission's goes first; the refresh's once none waits.
func TestARefreshReadsOnlyWhatNoAdmissionWaitsFor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newByteBudget(2, 1)
		ctx := func(tenant string) context.Context { return client.WithTenant(context.Background(), tenant) }
		hold := func(tenant string) func() {
			release, err := b.acquire(ctx(tenant), 1, "a manifest")
			if err != nil {
				t.Fatal(err)
			}
			return release
		}
		releaseA, releaseB := hold("tenant-a"), hold("tenant-b") // the total is taken
		var order []string
		var mu sync.Mutex
		var wg sync.WaitGroup
		wait := func(c context.Context, who string) {
			defer wg.Done()
			release, err := b.acquire(c, 1, "a manifest")
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, who)
			mu.Unlock()
			release()
		}
		wg.Add(2)
		go wait(client.WithShare(ctx("tenant-c"), client.NewShare(client.BackgroundTenant)), "refresh")
		synctest.Wait()
		go wait(ctx("tenant-c"), "admission")
		synctest.Wait()
		releaseA()
		synctest.Wait()
		mu.Lock()
		if len(order) == 0 || order[0] != "admission" {
			t.Errorf("read in the order %q, want the admission's first", order)
		}
		mu.Unlock()
		releaseB()
		wg.Wait()
		if len(order) != 2 {
			t.Errorf("read %q, want both", order)
		}
	})
}
