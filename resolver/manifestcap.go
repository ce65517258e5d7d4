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
// resolver's read budget until decode returns (see byteBudget): its
// Content-Length, or for a body sent without one unknownLengthCharge;
// such a body longer than that is read again on a charge of the cap, with
// nothing held meanwhile, so reads never wait on each other for more.
func (r *Resolver) readManifest(ctx context.Context, rt http.RoundTripper, ref name.Digest, decode func([]byte) error) error {
	what := "the manifest of " + ref.String()
	resp, err := getManifest(ctx, rt, ref)
	if err != nil {
		return err
	}
	charge := resp.ContentLength
	if charge < 0 {
		charge = unknownLengthCharge
	}
	release, err := r.reads.acquire(ctx, charge, what)
	if err != nil {
		resp.Body.Close()
		return err
	}
	raw, err := readBody(resp, charge)
	if err == nil && resp.ContentLength < 0 && len(raw) > unknownLengthCharge {
		// Read again charged the cap, the charge taken before the GET so
		// that neither its bytes nor an unread response wait for it.
		release()
		raw = nil
		if release, err = r.reads.acquire(ctx, maxManifestBytes, what); err != nil {
			return err
		}
		if resp, err = getManifest(ctx, rt, ref); err == nil {
			raw, err = readBody(resp, maxManifestBytes)
		}
	}
	defer release()
	if err != nil {
		return err
	}
	if len(raw) > maxManifestBytes {
		return &ManifestTooLargeError{Image: ref.String(), Limit: maxManifestBytes}
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

// getManifest is the GET of ref's manifest, refused before its body is
// read when it declares more than maxManifestBytes.
func getManifest(ctx context.Context, rt http.RoundTripper, ref name.Digest) (*http.Response, error) {
	repo := ref.Context()
	u := url.URL{Scheme: repo.Registry.Scheme(), Host: repo.RegistryStr(), Path: fmt.Sprintf("/v2/%s/manifests/%s", repo.RepositoryStr(), ref.DigestStr())}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", manifestAccept)
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return nil, err
	}
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		resp.Body.Close()
		return nil, err
	}
	if resp.ContentLength > maxManifestBytes {
		resp.Body.Close()
		return nil, &ManifestTooLargeError{Image: ref.String(), Limit: maxManifestBytes}
	}
	return resp, nil
}

// readBody reads and closes resp's body: at most limit+1 bytes of it, so
// that a body longer than limit is seen to be, into one allocation of that
// size rather than a doubling series that could reach twice it (ReadFrom
// wants MinRead free before each read).
func readBody(resp *http.Response, limit int64) ([]byte, error) {
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.Grow(int(limit) + 1 + bytes.MinRead)
	if _, err := buf.ReadFrom(io.LimitReader(resp.Body, limit+1)); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
