package registries_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/image-pin/image-pin-webhook/registries"
	"github.com/image-pin/image-pin-webhook/registries/credentials"
	"github.com/image-pin/image-pin-webhook/registries/imageref"
	"github.com/image-pin/image-pin-webhook/test/cloudtest"
	"github.com/image-pin/image-pin-webhook/test/cluster"
)

// distributionBinary is the real registry the end-to-end suite builds
// (hack/envtest-assets.sh); the test is skipped without it.
func distributionBinary(t *testing.T) string {
	t.Helper()
	for _, p := range []string{filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "registry"), "../bin/k8s/registry"} {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	t.Skip("no distribution registry binary: run hack/envtest-assets.sh or set KUBEBUILDER_ASSETS")
	return ""
}

// A real distribution registry over TLS whose htpasswd holds only the
// password the local ECR endpoint hands out, as ECR accepts only its tokens.
func TestARealRegistryAcceptsTheECRTokenAndNothingElse(t *testing.T) {
	bin := distributionBinary(t)
	const pass = "ecr-issued-Pa55-never-printed"
	ca, err := cluster.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	reg, err := cluster.StartRegistry(bin, t.TempDir(), cluster.RegistryOptions{Kind: cluster.TLSHtpasswd, Authority: ca, User: "AWS", Pass: pass})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Stop)
	if _, err := reg.Push("team/app:1"); err != nil {
		t.Fatal(err)
	}
	aws := cloudtest.NewAWS(t)
	aws.SetEnv(t)

	resolveAll := func(n int) error {
		creds := credentials.New()
		defer startRefresher(t, creds)()
		e := entry(t, "ecr", reg.URL, reg.Host, func(e *registries.Entry) {
			e.Credentials = source(t, "aws:region=eu-west-1")
			e.CAData = string(ca.CertPEM)
			e.Limit = 100000
		})
		set, err := registries.NewSet([]*registries.Entry{e}, registries.WithCredentials(creds))
		if err != nil {
			t.Fatal(err)
		}
		img, _ := imageref.ParseImage(reg.Host + "/team/app:1")
		tgt, _ := set.Match(img, "default")
		repo, _ := tgt.Client.Repository(tgt.Repository)
		for i := 0; i < n; i++ {
			err := tgt.Do(ctx(t), repo, func(rt http.RoundTripper) error {
				_, err := remote.Head(repo.Tag("1"), remote.WithTransport(rt), remote.WithContext(ctx(t)))
				return err
			})
			if err != nil {
				return err
			}
		}
		return nil
	}

	aws.SetPassword(pass)
	if err := resolveAll(1000); err != nil {
		t.Fatal(err)
	}
	if sts, ecr := aws.Counts(); sts != 1 || ecr != 1 {
		t.Errorf("token requests for 1000 resolutions: sts=%d ecr=%d, want 1 and 1", sts, ecr)
	}

	// A token the registry does not know (another account's, or revoked).
	aws.SetPassword("not-the-registry-Pa55-never-printed")
	err = resolveAll(1)
	if err == nil {
		t.Fatal("the registry accepted a token it does not know")
	}
	if !strings.Contains(err.Error(), "401") && !strings.Contains(err.Error(), "UNAUTHORIZED") {
		t.Errorf("error %q does not say the registry refused", err)
	}
	for _, secret := range append(aws.Secrets(), pass) {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error holds a secret: %q", err)
		}
	}
}
