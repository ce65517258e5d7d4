package resolver_test

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/image-pin/image-pin-webhook/test/registrytest"
)

// pushTags tags the manifest at repo:0.0.1 as n semver tags i/100.i%100.0.
func pushTags(t *testing.T, srv *registrytest.Server, repo, _ string, n int) {
	t.Helper()
	desc, err := remote.Get(srv.Ref(t, repo+":0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		tag := fmt.Sprintf("%d.%d.0", i/100, i%100)
		req, _ := http.NewRequest(http.MethodPut, fmt.Sprintf("%s/v2/%s/manifests/%s", srv.URL, repo, tag), bytes.NewReader(desc.Manifest))
		req.Header.Set("Content-Type", string(desc.MediaType))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("PUT %s: %s", tag, resp.Status)
		}
	}
}
