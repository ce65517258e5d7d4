package resolver

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/containerd/platforms"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// maxIndexImages bounds the images of one index whose build date
// newest-build reads (two requests each): max_candidate_tags bounds the
// candidates, and this what one candidate may cost. Multi-arch indexes
// list a handful of platforms (and their attestations, not read).
const maxIndexImages = 32

// metadata is what never changes for a digest: when it was built and, for
// an index, which platforms it covers.
type metadata struct {
	created   time.Time
	platforms []string // os/arch[/variant]; nil for a single image
	index     bool
}

// missing lists the wanted platforms an index lacks; a single image is
// taken to cover what it was asked for, since its platform is in its config.
// Platforms compare as containerd compares them, normalised: linux/arm64 is
// linux/arm64/v8 and linux/arm is linux/arm/v7, but a variant written on
// either side must match (linux/amd64/v2 is not linux/amd64).
func (m metadata) missing(want []string) []string {
	if !m.index {
		return nil
	}
	var out []string
	for _, w := range want {
		wp, err := platforms.Parse(w)
		if err != nil {
			out = append(out, w) // validated at load; never covered if not
			continue
		}
		match := platforms.NewMatcher(wp)
		found := false
		for _, have := range m.platforms {
			if hp, err := platforms.Parse(have); err == nil && match.Match(hp) {
				found = true
				break
			}
		}
		if !found {
			out = append(out, w)
		}
	}
	return out
}

// metadata reads (once per digest) the created time and platforms of desc.
// For an index, created is the newest of its children on platforms (all
// children when platforms is empty).
// Without withCreated only the index manifest is read.
func (r *Resolver) metadata(ctx context.Context, q Query, repo name.Repository, desc *v1.Descriptor, platforms []string, withCreated bool) (metadata, error) {
	k := metaKey{repoKey: q.repoKey(), digest: desc.Digest.String(), platforms: strings.Join(platforms, "\x00"), withCreated: withCreated}
	if md, ok := r.meta.Get(k); ok {
		return md, nil
	}
	ref := repo.Digest(desc.Digest.String())
	var md metadata
	err := q.Target.Do(ctx, repo, func(rt http.RoundTripper) error {
		opts := []remote.Option{remote.WithTransport(rt), remote.WithContext(ctx)}
		if desc.MediaType.IsIndex() {
			idx, err := remote.Index(ref, opts...)
			if err != nil {
				return err
			}
			im, err := idx.IndexManifest()
			if err != nil {
				return err
			}
			md = metadata{index: true}
			read := 0
			for _, m := range im.Manifests {
				if m.Platform == nil || m.Platform.OS == "unknown" {
					continue // attestations
				}
				p := m.Platform.OS + "/" + m.Platform.Architecture
				if m.Platform.Variant != "" {
					p += "/" + m.Platform.Variant
				}
				md.platforms = append(md.platforms, p)
				if !withCreated || len(platforms) > 0 && len(metadata{index: true, platforms: []string{p}}.missing(platforms)) == len(platforms) {
					continue
				}
				if read++; read > maxIndexImages {
					return fmt.Errorf("the index lists more than %d images to read the build date of: name the platforms in the entry's platforms, or pick another strategy", maxIndexImages)
				}
				c, err := created(repo.Digest(m.Digest.String()), opts...)
				if err != nil {
					return err
				}
				if c.After(md.created) {
					md.created = c
				}
			}
			return nil
		}
		if !withCreated {
			return nil
		}
		c, err := created(ref, opts...)
		if err != nil {
			return err
		}
		md = metadata{created: c}
		return nil
	})
	if err != nil {
		return metadata{}, fmt.Errorf("reading the metadata of %s: %w", ref, err)
	}
	r.meta.Add(k, md)
	r.metrics.cacheEntries("metadata", r.meta.Len())
	return md, nil
}

// maxConfigBytes bounds the config blob newest-build reads for its build
// date: real configs are KiB, and go-containerregistry reads whatever size
// the manifest declares (a 192 MiB config once cost 914 MiB).
const maxConfigBytes = 4 << 20

// created reads an image's build date (two requests: its manifest, then the
// config blob), refusing a config declared larger than maxConfigBytes before
// reading it; the blob is read through go-containerregistry's verifying
// reader, which stops at the declared size, and only its created field is
// decoded.
func created(ref name.Reference, opts ...remote.Option) (time.Time, error) {
	img, err := remote.Image(ref, opts...)
	if err != nil {
		return time.Time{}, err
	}
	m, err := img.Manifest()
	if err != nil {
		return time.Time{}, err
	}
	if m.Config.Size > maxConfigBytes {
		return time.Time{}, fmt.Errorf("its config blob is %d bytes, more than %d MiB: not read for newest-build", m.Config.Size, maxConfigBytes>>20)
	}
	raw, err := img.RawConfigFile()
	if err != nil {
		return time.Time{}, err
	}
	var cf struct {
		Created v1.Time `json:"created"`
	}
	if err := json.Unmarshal(raw, &cf); err != nil {
		return time.Time{}, fmt.Errorf("its config is not JSON: %v", err)
	}
	return cf.Created.Time, nil
}
