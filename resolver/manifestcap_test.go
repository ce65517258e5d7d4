package resolver_test

import (
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/image-pin/image-pin-webhook/resolver"
	"github.com/image-pin/image-pin-webhook/test/registrytest"
)

// pushLargeManifest pushes repo:tag with a manifest of more than size
// bytes (an annotation fills it), as go-containerregistry's registry
// stores any size, and returns the manifest.
func pushLargeManifest(t *testing.T, srv *registrytest.Server, repoTag string, size int) []byte {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.Annotations(img, map[string]string{"filler": strings.Repeat("x", size)}).(v1.Image)
	srv.Push(t, repoTag, img)
	raw, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestAManifestLargerThanTheCapIsRefusedNamingTheImageAndTheCap(t *testing.T) {
	for _, tc := range []struct {
		name    string
		chunked bool // the registry sends no Content-Length
	}{
		{"when its Content-Length says so, before its body is read", false},
		{"when it is sent without a length, cut off at the cap", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := registrytest.New(t)
			raw := pushLargeManifest(t, srv, "big:1", 6<<20)
			if tc.chunked {
				srv.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
					if r.Method != http.MethodGet || !strings.Contains(r.URL.Path, "/manifests/") {
						return false
					}
					w.Header().Set("Content-Type", string(types.DockerManifestSchema2))
					w.(http.Flusher).Flush() // no Content-Length: sent chunked
					_, _ = w.Write(raw)
					return true
				})
			}
			tgt := setup(t, srv, "big", withLimit(100000))
			_, err := resolver.New().Resolve(ctxFor(t, time.Minute), query(tgt, "", resolver.Policy{Strategy: resolver.NewestBuild}))
			var tooLarge *resolver.ManifestTooLargeError
			if !errors.As(err, &tooLarge) || !strings.Contains(err.Error(), srv.Host+"/big") || !strings.Contains(err.Error(), "4 MiB") {
				t.Fatalf("err = %v; want the manifest refused, naming %s/big and the 4 MiB cap", err, srv.Host)
			}
		})
	}
}

// A manifest may declare a small config and the registry send a huge one:
// go-containerregistry's verifying reader stops at the declared size, so
// newest-build never holds more than that, and the digest check fails.
func TestAConfigBlobThatLiesAboutItsSizeIsCutAtTheDeclaredSize(t *testing.T) {
	srv := registrytest.New(t)
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	srv.Push(t, "liar:1", img)
	cfg, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	const huge = 192 << 20
	var sent atomic.Int64
	srv.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/blobs/"+cfg.String()) {
			return false
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		chunk := []byte(strings.Repeat("{", 64<<10))
		for sent.Load() < huge {
			n, err := w.Write(chunk)
			sent.Add(int64(n))
			if err != nil {
				return true // the client hung up
			}
		}
		return true
	})
	tgt := setup(t, srv, "liar", withLimit(100000))
	_, err = resolver.New().Resolve(ctxFor(t, time.Minute), query(tgt, "", resolver.Policy{Strategy: resolver.NewestBuild}))
	if err == nil {
		t.Fatal("a config that is not the one its manifest names gave a build date")
	}
	// What the handler could write before the client hung up: what the
	// reader took plus the sockets' buffers, far below what it offered.
	if n := sent.Load(); n >= huge {
		t.Errorf("the registry sent all %d MiB of the config: the reader did not stop at the declared size", n>>20)
	}
	t.Logf("error: %v; the registry wrote %d KiB of the %d MiB it offered", err, sent.Load()>>10, huge>>20)
}
