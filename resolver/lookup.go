package resolver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/image-pin/image-pin-webhook/registries"
	"github.com/image-pin/image-pin-webhook/registries/client"
)

// lookup asks the registry: the tag (chosen by strategy) and its digest.
func (r *Resolver) lookup(ctx context.Context, q Query) (answer, error) {
	p, tag := q.Policy, q.tag()
	repo, err := q.Target.Client.Repository(q.Target.Repository)
	if err != nil {
		return answer{}, fmt.Errorf("repository %q: %v", q.Target.Repository, err)
	}
	tr := startTrace(ctx, repo.String(), p)
	chosen := ""
	defer func() { tr.done(chosen) }()
	if p.Strategy != Digest {
		tags, err := r.listTags(ctx, q, repo)
		if err != nil {
			return answer{}, err
		}
		cands, err := p.candidates(ctx, tags)
		if err != nil {
			return answer{}, err
		}
		tr.tags(tags, cands)
		if len(cands) == 0 {
			return answer{}, noMatch("%s: none of its %d tags passes allow_tags and ignore_tags", repo, len(tags))
		}
		switch p.Strategy {
		case Semver:
			tag, err = newestSemver(ctx, cands, p.Constraint)
		case Alphabetical:
			tag = slicesMax(cands)
		case NewestBuild:
			tag, err = r.newestBuild(ctx, q, repo, cands)
		default:
			err = fmt.Errorf("unknown strategy %q", p.Strategy)
		}
		if err != nil {
			return answer{}, fmt.Errorf("%s: %w", repo, err)
		}
	}
	chosen = tag
	desc, err := r.digest(ctx, q.Target, repo.Tag(tag))
	if err != nil {
		return answer{}, err
	}
	if len(p.Platforms) > 0 {
		md, err := r.metadata(ctx, q, repo, desc, nil, false)
		if err != nil {
			return answer{}, err
		}
		if missing := md.missing(p.Platforms); len(missing) > 0 {
			return answer{}, noMatch("%s:%s (%s) does not cover the platforms %s", repo, tag, desc.Digest, strings.Join(missing, ", "))
		}
	}
	return answer{tag: tag, digest: desc.Digest.String()}, nil
}

// digest asks for the tag's descriptor with a manifest HEAD, and GETs the
// manifest only when the HEAD answer lacks what a digest needs.
func (r *Resolver) digest(ctx context.Context, t registries.Target, ref name.Tag) (*v1.Descriptor, error) {
	var desc *v1.Descriptor
	err := t.Do(ctx, ref.Repository, func(rt http.RoundTripper) error {
		d, err := remote.Head(ref, remote.WithTransport(rt), remote.WithContext(ctx))
		var te *transport.Error
		if err != nil && !errors.As(err, &te) && ctx.Err() == nil {
			// The registry answered 200 without Docker-Content-Digest (or
			// Content-Type): the body gives the digest.
			var g *remote.Descriptor
			if g, err = remote.Get(ref, remote.WithTransport(rt), remote.WithContext(ctx)); err == nil {
				d, err = &g.Descriptor, checkManifest(g.Manifest)
			}
		}
		desc = d
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("looking up %s: %w", ref, err)
	}
	return desc, nil
}

// listTags lists every tag of repo, following pagination, cached for the TTL.
func (r *Resolver) listTags(ctx context.Context, q Query, repo name.Repository) ([]string, error) {
	p, k, tenant := q.Policy, q.repoKey(), client.TenantOf(ctx)
	if tl, ok := r.tags.Get(tenant, k); ok && !p.Fresh && fresh(tl.at, p.CacheTTL) {
		return tl.tags, nil
	}
	var tags []string
	err := q.Target.Do(ctx, repo, func(rt http.RoundTripper) error {
		var err error
		tags, err = q.Target.Client.ListTags(ctx, rt, repo, tagsPageSize)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listing the tags of %s: %w", repo, err)
	}
	r.tags.Add(tenant, k, tagList{tags: tags, at: time.Now()})
	r.metrics.cacheEntries("tags", r.tags.Len())
	return tags, nil
}

// newestSemver picks the highest version that meets c; equal versions (1.4,
// v1.4.0) go to the lexically greatest tag. Pre-releases only when c names one.
// It stops at ctx's deadline, looked at before every tag as candidates does.
func newestSemver(ctx context.Context, tags []string, c *Constraint) (string, error) {
	var best *semver.Version
	bestTag := ""
	for i, t := range tags {
		if err := ctx.Err(); err != nil {
			return "", fmt.Errorf("matching tags against the semver constraint: stopped at the deadline after %d of %d: %w", i, len(tags), err)
		}
		v, err := semver.NewVersion(t)
		if err != nil {
			continue
		}
		if v.Prerelease() != "" && !c.pre {
			continue
		}
		if !c.c.Check(v) {
			continue
		}
		if best == nil || v.GreaterThan(best) || (v.Equal(best) && t > bestTag) {
			best, bestTag = v, t
		}
	}
	if best == nil {
		return "", noMatch("no tag matches the semver constraint %q", c.Text)
	}
	return bestTag, nil
}

func slicesMax(tags []string) string {
	m := tags[0]
	for _, t := range tags[1:] {
		if t > m {
			m = t
		}
	}
	return m
}

// newestBuild picks the tag whose image was built last. With tagsortmode
// latest-first or latest-last the registry's order decides and no metadata
// is fetched, as in Argo CD Image Updater.
func (r *Resolver) newestBuild(ctx context.Context, q Query, repo name.Repository, tags []string) (string, error) {
	p := q.Policy
	switch p.TagSortMode {
	case TagSortLatestFirst:
		return tags[0], nil
	case TagSortLatestLast:
		return tags[len(tags)-1], nil
	}
	if max := p.maxCandidates(); len(tags) > max {
		return "", fmt.Errorf("newest-build would read the build date of %d tags, more than max_candidate_tags (%d): narrow them with allow_tags (or ignore_tags)", len(tags), max)
	}
	type dated struct {
		tag     string
		created time.Time
		err     error
	}
	// A fixed pool of workers, whatever the number of tags: goroutines and
	// memory stay bounded by newestBuildWorkers per lookup.
	out := make([]dated, len(tags))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(newestBuildWorkers, len(tags)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				desc, err := r.tagDescriptor(ctx, q, repo.Tag(tags[i]))
				if err != nil {
					out[i] = dated{tag: tags[i], err: err}
					continue
				}
				md, err := r.metadata(ctx, q, repo, desc, p.Platforms, true)
				out[i] = dated{tag: tags[i], created: md.created, err: err}
			}
		}()
	}
feed:
	for i := range tags {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	// The newest of the tags read before the deadline is not the newest
	// build: pinning it would silently pin an older image.
	// The rate limit refuses a wait that would end past the deadline before
	// the context ends: that is running out of time too.
	late, read := ctx.Err(), 0
	for _, d := range out {
		switch {
		case d.tag != "" && d.err == nil:
			read++
		case late == nil && errors.Is(d.err, context.DeadlineExceeded):
			late = d.err
		}
	}
	if late != nil {
		return "", fmt.Errorf("newest-build read the build date of %d of %d candidate tags before the deadline: narrow them with allow_tags (or ignore_tags): %w", read, len(tags), late)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].created.Equal(out[j].created) {
			return out[i].created.After(out[j].created)
		}
		return out[i].tag > out[j].tag
	})
	for _, d := range out {
		if d.err == nil {
			return d.tag, nil
		}
	}
	return "", fmt.Errorf("no tag's build date could be read: %w", out[0].err)
}

// checkManifest refuses a body that is not a manifest, so a garbage or
// truncated answer is never hashed into a digest to pin.
func checkManifest(b []byte) error {
	var m struct {
		SchemaVersion int `json:"schemaVersion"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("the manifest is not valid JSON (%d bytes): %v", len(b), err)
	}
	if m.SchemaVersion != 2 {
		return fmt.Errorf("the manifest has schemaVersion %d, want 2", m.SchemaVersion)
	}
	return nil
}

// tagDescriptor is digest with a cache per tag for cache_ttl, so that
// newest-build does not HEAD every candidate tag at every lookup.
func (r *Resolver) tagDescriptor(ctx context.Context, q Query, ref name.Tag) (*v1.Descriptor, error) {
	p, k, tenant := q.Policy, tagKey{repoKey: q.repoKey(), tag: ref.TagStr()}, client.TenantOf(ctx)
	if td, ok := r.descs.Get(tenant, k); ok && !p.Fresh && fresh(td.at, p.CacheTTL) {
		return &td.desc, nil
	}
	desc, err := r.digest(ctx, q.Target, ref)
	if err != nil {
		return nil, err
	}
	r.descs.Add(tenant, k, tagDesc{desc: *desc, at: time.Now()})
	return desc, nil
}
