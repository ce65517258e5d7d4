package resolver

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// ManifestTooLargeError is a manifest (or index) the resolver would not
// read whole: past maxManifestBytes it stops reading, whatever the
// registry says its length is.
type ManifestTooLargeError struct {
	Image string // host/repository@digest
	Limit int64
}

func (e *ManifestTooLargeError) Error() string {
	return fmt.Sprintf("the manifest of %s is larger than %d MiB, the most the webhook reads of one: not read", e.Image, e.Limit>>20)
}

// manifestAccept is every manifest kind newest-build reads.
var manifestAccept = strings.Join([]string{
	string(types.OCIManifestSchema1), string(types.DockerManifestSchema2),
	string(types.OCIImageIndex), string(types.DockerManifestList),
}, ", ")

// readManifest GETs the manifest ref names through rt (the entry's
// authenticated transport), checks it is the one its digest names, and
// gives it to decode. go-containerregistry reads up to 100 MiB of a
// manifest into memory, and a tenant's registry chooses the size: this
// reads at most maxManifestBytes, refusing a response that declares more
// before reading its body, and one that declares less (or nothing) and
// sends more once past the bound. The bytes it reads are taken from the
// resolver's read budget until decode returns (see byteBudget).
func (r *Resolver) readManifest(ctx context.Context, rt http.RoundTripper, ref name.Digest, decode func([]byte) error) error {
	repo := ref.Context()
	u := url.URL{Scheme: repo.Registry.Scheme(), Host: repo.RegistryStr(), Path: fmt.Sprintf("/v2/%s/manifests/%s", repo.RepositoryStr(), ref.DigestStr())}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", manifestAccept)
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		return err
	}
	tooLarge := &ManifestTooLargeError{Image: ref.String(), Limit: maxManifestBytes}
	if resp.ContentLength > maxManifestBytes {
		return tooLarge
	}
	size := resp.ContentLength
	if size < 0 {
		size = maxManifestBytes // unknown until read: the most it may be
	}
	release, err := r.reads.acquire(ctx, size, "the manifest of "+ref.String())
	if err != nil {
		return err
	}
	defer release()
	var buf bytes.Buffer
	if resp.ContentLength >= 0 {
		buf.Grow(int(resp.ContentLength) + bytes.MinRead) // one allocation, not a doubling series
	}
	if _, err := buf.ReadFrom(io.LimitReader(resp.Body, maxManifestBytes+1)); err != nil {
		return err
	}
	raw := buf.Bytes()
	if len(raw) > maxManifestBytes {
		return tooLarge
	}
	got, _, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	if got.String() != ref.DigestStr() {
		return fmt.Errorf("the manifest of %s has digest %s: not the one asked for", ref, got)
	}
	return decode(raw)
}
