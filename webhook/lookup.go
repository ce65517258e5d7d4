package webhook

import (
	"context"
	"fmt"
	"strings"
	"sync"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/image-pin/image-pin-webhook/config"
	"github.com/image-pin/image-pin-webhook/registries/imageref"
	"github.com/image-pin/image-pin-webhook/resolver"
)

// resolve runs every lookup at once, within ctx.
// Past policy.max_lookups, the remaining containers get an error (a warning
// or a denial per on_error) instead of a lookup: one object cannot cost more.
func (p *plan) resolve(ctx context.Context) {
	defer p.settle()
	p.withPullSecrets(ctx)
	p.recognize(ctx)
	release, ok := p.slot(ctx)
	if !ok {
		return
	}
	defer release()
	// Answers from memory come at once: running them one after another
	// spares a goroutine each.
	warm := p.warm(ctx)
	maxLookups := p.cfg.Policy.MaxLookups // at least 1: config defaults it
	var wg sync.WaitGroup
	// Containers with the same query share one lookup (in the resolver);
	// counted only when the object has more tasks than the bound.
	var lookups map[resolver.QueryID]bool
	if len(p.tasks) > maxLookups {
		lookups = map[resolver.QueryID]bool{}
	}
	for _, t := range p.tasks {
		if t.fixed != "" {
			t.out = t.fixed
			continue
		}
		if t.err != nil {
			continue // failed before any lookup
		}
		if lookups != nil {
			id := t.query.ID()
			if !lookups[id] && len(lookups) >= maxLookups {
				t.err = fmt.Errorf("not looked up: the object has more than %d images to resolve (policy.max_lookups)", maxLookups)
				continue
			}
			lookups[id] = true
		}
		if warm {
			p.lookup(ctx, t)
			continue
		}
		wg.Go(func() { p.lookup(ctx, t) })
	}
	wg.Wait()
}

// lookup resolves one task, within ctx.
func (p *plan) lookup(ctx context.Context, t *task) {
	res, err := p.resolver.Resolve(ctx, t.query.Query)
	t.err = err
	// The last known digest stands in for a failed lookup, except in a
	// restart of an image pinned already: this replica's memory may be
	// older than the stored pin (made by another replica), and a restart
	// must never roll back.
	keep := res.Stale && t.query.Policy.Fresh && strings.Contains(t.c.image, "@")
	if res.Digest != "" && !keep && (err == nil || (res.Stale && t.query.OnError == config.OnErrorIgnore)) {
		t.out = p.images.pinned(t.img.Repo, res.Tag, res.Digest)
	}
}

// warm reports whether every lookup still to run is answered from memory.
func (p *plan) warm(ctx context.Context) bool {
	for _, t := range p.tasks {
		if t.fixed == "" && t.err == nil && !p.resolver.Answerable(ctx, t.query.Query) {
			return false
		}
	}
	return true
}

// imageCache parses each distinct reference once: parsing costs more than
// the rest of a warm admission. It also keeps the pinned references made
// from them: a warm admission would otherwise make the same string anew
// for every container.
type imageCache struct {
	parsed *lru.Cache[string, parsedImage]
	pins   *lru.Cache[pinKey, string]
}

type pinKey struct{ repo, tag, digest string }

type parsedImage struct {
	img imageref.Image
	err error
}

func newImageCache(size int) *imageCache {
	c, _ := lru.New[string, parsedImage](size)
	pins, _ := lru.New[pinKey, string](size)
	return &imageCache{parsed: c, pins: pins}
}

// pinned is repo:tag@digest, made once.
func (c *imageCache) pinned(repo, tag, digest string) string {
	k := pinKey{repo, tag, digest}
	if s, ok := c.pins.Get(k); ok {
		return s
	}
	s := repo + ":" + tag + "@" + digest
	c.pins.Add(k, s)
	return s
}

// parse is imageref.ParseImage, remembered.
func (c *imageCache) parse(ref string) (imageref.Image, error) {
	if p, ok := c.parsed.Get(ref); ok {
		return p.img, p.err
	}
	img, err := imageref.ParseImage(ref)
	c.parsed.Add(ref, parsedImage{img, err})
	return img, err
}
