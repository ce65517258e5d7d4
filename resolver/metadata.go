package resolver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/containerd/platforms"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/image-pin/image-pin-webhook/registries/client"
)

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
//
// Lookups that need the same digest's metadata at once share one read: the
// key is the entry's identity (its credentials) and the digest, so a read
// is never shared across entries. The read (its registry requests and its
// bytes of the read budget, see byteBudget.acquire) is charged to the
// lookup that started it, and to the neutral share once a lookup of
// another namespace joins it, as shared lookups are (see Resolver.share).
func (r *Resolver) metadata(ctx context.Context, q Query, repo name.Repository, desc *v1.Descriptor, platforms []string, withCreated bool) (metadata, error) {
	k := metaKey{repoKey: q.repoKey(), digest: desc.Digest.String(), platforms: strings.Join(platforms, "\x00"), withCreated: withCreated}
	tenant := client.TenantOf(ctx)
	if md, ok := r.meta.Get(tenant, k); ok {
		return md, nil
	}
	for attempt := 0; ; attempt++ {
		sh := lookupShareOf(ctx)
		c, leader := r.metaFlight.Start(k, sh, func() (metadata, error) {
			md, err := r.readMetadata(ctx, q, repo, desc, platforms, withCreated)
			if err == nil {
				r.meta.Add(tenant, k, md)
				r.metrics.cacheEntries("metadata", r.meta.Len())
			}
			return md, err
		})
		if s, ok := c.Data().(*client.Share); ok && s != nil && !leader {
			s.Join(tenant)
		}
		select {
		case <-c.Done():
		case <-ctx.Done():
			return metadata{}, fmt.Errorf("reading the metadata of %s: %w", repo.Digest(k.digest), ctx.Err())
		}
		md, err := c.Result()
		if err != nil && !leader && attempt == 0 && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			continue // the starter's time ran out, not ours
		}
		if err == nil && !leader {
			r.meta.Get(tenant, k) // a joiner claims what it read too
		}
		return md, err
	}
}

// readMetadata reads the metadata of desc from the registry.
func (r *Resolver) readMetadata(ctx context.Context, q Query, repo name.Repository, desc *v1.Descriptor, platforms []string, withCreated bool) (metadata, error) {
	ref := repo.Digest(desc.Digest.String())
	var md metadata
	err := q.Target.Do(ctx, repo, func(rt http.RoundTripper) error {
		opts := []remote.Option{remote.WithTransport(rt), remote.WithContext(ctx)}
		if desc.MediaType.IsIndex() {
			// Only what the metadata keeps and the children to read are
			// taken out of the decoded index, which is garbage once the
			// read's budget is given back.
			var children []v1.Hash
			md = metadata{index: true}
			err := r.readManifest(ctx, rt, ref, func(raw []byte) error {
				im, err := v1.ParseIndexManifest(bytes.NewReader(raw))
				if err != nil {
					return fmt.Errorf("the index is not valid: %v", err)
				}
				seen := map[string]bool{}
				for _, m := range im.Manifests {
					if m.Platform == nil || m.Platform.OS == "unknown" {
						continue // attestations
					}
					p := m.Platform.OS + "/" + m.Platform.Architecture
					if m.Platform.Variant != "" {
						p += "/" + m.Platform.Variant
					}
					if len(p) > maxPlatformBytes {
						return fmt.Errorf("the index lists a platform of %d bytes, more than %d: not read", len(p), maxPlatformBytes)
					}
					if !seen[p] {
						if len(seen) == maxIndexPlatforms {
							return fmt.Errorf("the index lists more than %d platforms: not read", maxIndexPlatforms)
						}
						seen[p] = true
						md.platforms = append(md.platforms, p)
					}
					if !withCreated || len(platforms) > 0 && len(metadata{index: true, platforms: []string{p}}.missing(platforms)) == len(platforms) {
						continue
					}
					if len(children) == maxIndexImages {
						return fmt.Errorf("the index lists more than %d images to read the build date of: name the platforms in the entry's platforms, or pick another strategy", maxIndexImages)
					}
					children = append(children, m.Digest)
				}
				return nil
			})
			if err != nil {
				return err
			}
			for _, d := range children {
				c, err := r.created(ctx, rt, repo.Digest(d.String()), opts...)
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
		c, err := r.created(ctx, rt, ref, opts...)
		if err != nil {
			return err
		}
		md = metadata{created: c}
		return nil
	})
	if err != nil {
		return metadata{}, fmt.Errorf("reading the metadata of %s: %w", ref, err)
	}
	return md, nil
}

// created reads an image's build date (two requests: its manifest, then the
// config blob), refusing a config declared larger than maxConfigBytes
// before reading it. The blob is read through a reader that stops one byte
// past the size the manifest declares, whatever the registry sends, and
// only its created field is decoded. The config's declared size is taken
// from the read budget while it is read, once the manifest's is given back.
func (r *Resolver) created(ctx context.Context, rt http.RoundTripper, ref name.Digest, opts ...remote.Option) (time.Time, error) {
	var m *v1.Manifest
	err := r.readManifest(ctx, rt, ref, func(raw []byte) (err error) {
		if m, err = v1.ParseManifest(bytes.NewReader(raw)); err != nil {
			return fmt.Errorf("the manifest is not valid: %v", err)
		}
		return nil
	})
	if err != nil {
		return time.Time{}, err
	}
	if m.Config.Size > maxConfigBytes {
		return time.Time{}, fmt.Errorf("its config blob is %d bytes, more than %d MiB: not read for newest-build", m.Config.Size, maxConfigBytes>>20)
	}
	release, err := r.reads.acquire(ctx, m.Config.Size, "the config of "+ref.String())
	if err != nil {
		return time.Time{}, err
	}
	defer release()
	cfg, err := remote.Layer(ref.Context().Digest(m.Config.Digest.String()), opts...)
	if err != nil {
		return time.Time{}, err
	}
	rc, err := cfg.Compressed() // verifies the digest at its end
	if err != nil {
		return time.Time{}, err
	}
	defer rc.Close()
	raw, err := io.ReadAll(io.LimitReader(rc, m.Config.Size+1))
	if err != nil {
		return time.Time{}, err
	}
	if int64(len(raw)) > m.Config.Size {
		return time.Time{}, fmt.Errorf("its config blob is larger than the %d bytes its manifest declares: not read further", m.Config.Size)
	}
	var cf struct {
		Created v1.Time `json:"created"`
	}
	if err := json.Unmarshal(raw, &cf); err != nil {
		return time.Time{}, fmt.Errorf("its config is not JSON: %v", err)
	}
	return cf.Created.Time, nil
}
