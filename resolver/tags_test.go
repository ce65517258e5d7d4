package resolver_test

import (
	"encoding/pem"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/image-pin/image-pin-webhook/resolver"
	"github.com/image-pin/image-pin-webhook/test/registrytest"
)

// pushTags tags the manifest at repo:0.0.1 as n semver tags i/100.i%100.0.
func pushTags(t *testing.T, srv *registrytest.Server, repo string, n int) {
	t.Helper()
	tags := make([]string, n)
	for i := range tags {
		tags[i] = fmt.Sprintf("%d.%d.0", i/100, i%100)
	}
	srv.Tag(t, repo, "0.0.1", tags...)
}

// go-containerregistry takes loopback and RFC 1918 hosts for plain HTTP
// registries; the listing's next-page links must still be followed over
// the scheme api_url names.
func TestATagListingOfSeveralPagesIsFollowedOverTheSchemeOfAPIURL(t *testing.T) {
	if testing.Short() {
		t.Skip("pushes 2,001 tags per case")
	}
	tests := []struct {
		name string
		tls  bool
		host func(srv *registrytest.Server) string
		// entry sets the entry's TLS fields for srv.
		entry func(srv *registrytest.Server) entryOption
	}{
		{
			name:  "plain HTTP on 127.0.0.1",
			host:  func(srv *registrytest.Server) string { return srv.Host },
			entry: func(*registrytest.Server) entryOption { return func(*testEntry) {} },
		},
		{
			name: "HTTPS on 127.0.0.1, verified against the registry's CA",
			tls:  true,
			host: func(srv *registrytest.Server) string { return srv.Host },
			entry: func(srv *registrytest.Server) entryOption {
				caPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
				return func(e *testEntry) { e.CAData = caPEM }
			},
		},
		{
			name: "HTTPS on localhost",
			tls:  true,
			host: func(srv *registrytest.Server) string {
				return strings.Replace(srv.Host, "127.0.0.1", "localhost", 1)
			},
			entry: func(*registrytest.Server) entryOption { return func(e *testEntry) { e.Insecure = true } },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var opts []registrytest.Option
			if tc.tls {
				opts = append(opts, registrytest.WithTLS())
			}
			srv := registrytest.New(t, opts...)
			srv.PushImage(t, "big:0.0.1")
			pushTags(t, srv, "big", 2000)
			host := tc.host(srv)
			scheme := "http"
			if tc.tls {
				scheme = "https"
			}
			tgt := target(t, scheme+"://"+host, host, host+"/big", withLimit(100000), tc.entry(srv))
			srv.Reset()
			res, err := resolver.New().Resolve(ctxFor(t, 30*time.Second), query(tgt, "", semverPolicy(t, ">=0")))
			if err != nil {
				t.Fatal(err)
			}
			if res.Tag != "19.99.0" {
				t.Errorf("tag = %q, want 19.99.0 (the last page's newest)", res.Tag)
			}
			if n := srv.Count("GET", "tags"); n != 3 {
				t.Errorf("tag pages = %d, want 3 (2,001 tags at 1,000 a page)", n)
			}
		})
	}
}
