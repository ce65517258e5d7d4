package resolver_test

import (
	"bytes"
	"encoding/pem"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/image-pin/image-pin-webhook/config"
	"github.com/image-pin/image-pin-webhook/registries/imageref"
	"github.com/image-pin/image-pin-webhook/resolver"
	"github.com/image-pin/image-pin-webhook/test/registrytest"
)

// pushTags tags the manifest at repo:0.0.1 as n semver tags i/100.i%100.0.
func pushTags(t *testing.T, srv *registrytest.Server, repo, _ string, n int) {
	t.Helper()
	desc, err := remote.Get(srv.Ref(t, repo+":0.0.1"), remote.WithTransport(srv.Client().Transport))
	if err != nil {
		t.Fatal(err)
	}
	client := srv.Client()
	for i := range n {
		tag := fmt.Sprintf("%d.%d.0", i/100, i%100)
		req, _ := http.NewRequest(http.MethodPut, fmt.Sprintf("%s/v2/%s/manifests/%s", srv.URL, repo, tag), bytes.NewReader(desc.Manifest))
		req.Header.Set("Content-Type", string(desc.MediaType))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("PUT %s: %s", tag, resp.Status)
		}
	}
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
		// extra entry YAML
		extra func(srv *registrytest.Server) string
	}{
		{
			name:  "plain HTTP on 127.0.0.1",
			host:  func(srv *registrytest.Server) string { return srv.Host },
			extra: func(*registrytest.Server) string { return "" },
		},
		{
			name: "HTTPS on 127.0.0.1, verified against the registry's CA",
			tls:  true,
			host: func(srv *registrytest.Server) string { return srv.Host },
			extra: func(srv *registrytest.Server) string {
				caPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
				return "  ca_data: |\n    " + strings.ReplaceAll(strings.TrimSpace(caPEM), "\n", "\n    ") + "\n"
			},
		},
		{
			name: "HTTPS on localhost",
			tls:  true,
			host: func(srv *registrytest.Server) string {
				return strings.Replace(srv.Host, "127.0.0.1", "localhost", 1)
			},
			extra: func(*registrytest.Server) string { return "  insecure: true\n" },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var opts []registrytest.Option
			if tc.tls {
				opts = append(opts, registrytest.WithTLS())
			}
			srv := registrytest.New(t, opts...)
			img := srv.PushImage(t, "big:0.0.1")
			pushTags(t, srv, "big", img, 2000)
			host := tc.host(srv)
			scheme := "http"
			if tc.tls {
				scheme = "https"
			}
			doc := fmt.Sprintf("registries:\n- name: test\n  api_url: %s://%s\n  prefix: %s\n  limit: 100000\n%s", scheme, host, host, tc.extra(srv))
			tgt := target(t, doc, host+"/big")
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

// target parses the config doc and matches image in it.
func target(t *testing.T, doc, image string) testTarget {
	t.Helper()
	c, err := config.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	img, err := imageref.ParseImage(image)
	if err != nil {
		t.Fatal(err)
	}
	tgt, ok := c.Registries.Match(img, "default")
	if !ok {
		t.Fatalf("no entry matches %s", image)
	}
	return testTarget{Target: tgt, policy: c.Policy.Registries[tgt.Entry.Prefix]}
}
