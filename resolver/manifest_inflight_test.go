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

// heldBodies is a transport whose every manifest answer is body (with or
// without a Content-Length). Each body blocks at its first read until open
// is closed (reading counts those bodies), and, when past is not nil, once
// more when it is read beyond unknownLengthCharge+1 bytes, until past is
// closed (beyond counts those): only a read charged the cap gets so far.
type heldBodies struct {
	body          []byte
	chunked       bool
	open, past    chan struct{}
	reading       atomic.Int64
	most          atomic.Int64
	beyond, most2 atomic.Int64
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
	h                *heldBodies
	r                *bytes.Reader
	started, further bool
}

// count adds one to now and keeps most its highest.
func count(now, most *atomic.Int64) {
	if n := now.Add(1); n > most.Load() {
		most.Store(n)
	}
}

func (b *heldBody) Read(p []byte) (int, error) {
	if !b.started {
		b.started = true
		count(&b.h.reading, &b.h.most)
		<-b.h.open
	}
	if read := b.r.Size() - int64(b.r.Len()); b.h.past != nil && !b.further && read > unknownLengthCharge {
		b.further = true
		count(&b.h.beyond, &b.h.most2)
		<-b.h.past
	}
	return b.r.Read(p)
}

func (b *heldBody) Close() error {
	if b.started {
		b.h.reading.Add(-1)
	}
	if b.further {
		b.h.beyond.Add(-1)
	}
	return nil
}

// manifestOf is a manifest of about size bytes and the digest that names it.
func manifestOf(t *testing.T, size int) ([]byte, name.Digest) {
	t.Helper()
	body := []byte(`{"schemaVersion":2,"pad":"` + strings.Repeat("x", size-len(`{"schemaVersion":2,"pad":""}`)) + `"}`)
	ref, err := name.NewDigest(fmt.Sprintf("reg.example/tenant/app@sha256:%x", sha256.Sum256(body)))
	if err != nil {
		t.Fatal(err)
	}
	return body, ref
}

// One Pod of 32 containers under newest-build reads up to 256 manifests at
// once, each up to 4 MiB (an index of 10,000 entries decodes into several
// times that): the bytes being read are bounded across the webhook and per
// namespace, and one namespace's reads never wait behind another's.
func TestManifestsBeingReadAreBoundedInBytesPerNamespace(t *testing.T) {
	closed := make(chan struct{})
	close(closed)
	for _, tc := range []struct {
		name    string
		size    int
		chunked bool
		// beyond: the reads are held once read past unknownLengthCharge+1
		// bytes (h.past), not at their first read (h.open).
		beyond bool
		reads  int   // one namespace's reads started at once
		want   int64 // of them, held at once
	}{
		{"with a Content-Length, each charged its length", 1 << 20, false, false, 8, maxReadBytesPerNamespace / (1 << 20)},
		{"sent without a length, each charged 64 KiB", 16 << 10, true, false, 80, maxReadBytesPerNamespace / unknownLengthCharge},
		{"sent without a length and longer than 64 KiB, read again charged the cap", 1 << 20, true, true, 8, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				body, ref := manifestOf(t, tc.size)
				h := &heldBodies{body: body, chunked: tc.chunked, open: make(chan struct{})}
				held, most, release := &h.reading, &h.most, h.open
				if tc.beyond {
					h.open, h.past = closed, make(chan struct{})
					held, most, release = &h.beyond, &h.most2, h.past
				}
				r := New()
				var wg sync.WaitGroup
				read := func(tenant string) {
					defer wg.Done()
					ctx := client.WithTenant(context.Background(), tenant)
					if err := r.readManifest(ctx, h, ref, func([]byte) error { return nil }); err != nil {
						t.Errorf("%s: %v", tenant, err)
					}
				}
				for range tc.reads {
					wg.Add(1)
					go read("tenant-a")
				}
				synctest.Wait()
				if got := held.Load(); got != tc.want {
					t.Errorf("%d of one namespace's %d manifests of %d bytes are being read at once, want %d (%d MiB per namespace)", got, tc.reads, len(body), tc.want, maxReadBytesPerNamespace>>20)
				}
				wg.Add(1)
				go read("tenant-b")
				synctest.Wait()
				if got := held.Load(); got != tc.want+1 {
					t.Errorf("another namespace's read waits behind the first's: %d bodies being read, want %d", got, tc.want+1)
				}
				close(release)
				wg.Wait()
				if m := most.Load(); m > tc.want+1 {
					t.Errorf("%d bodies read at once, want at most %d", m, tc.want+1)
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
				// Of the cap: each read takes a namespace's whole share.
				body, ref := manifestOf(t, maxReadBytesPerNamespace)
				h := &heldBodies{body: body, open: make(chan struct{})}
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
