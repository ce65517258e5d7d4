package config

import (
	"github.com/image-pin/image-pin-webhook/registries"
	"github.com/image-pin/image-pin-webhook/resolver"
)

// Query puts together, in one place, everything the lookup of one image
// depends on: the entry that matches img among those that admit namespace
// ns (with its identity), the policy merged field by field from over (the
// object's annotations), the longest policy.images rule and the policy
// defaults, the entry's platforms and tagsortmode, cache_ttl, and on_error
// (the entry's, else the policy's). fresh bypasses the answer cache.
//
// ok is false when the image is left alone: no entry admits ns for it, or
// its strategy is skip. The error says why the merged fields are not a
// policy (semver without a constraint); q then still carries on_error.
func (c *Config) Query(img registries.Image, ns string, over Steering, fresh bool) (q resolver.Query, ok bool, err error) {
	target, ok := c.Registries.Match(img, ns)
	if !ok {
		return resolver.Query{}, false, nil
	}
	s := c.Steering(img, over)
	if s.Skip {
		return resolver.Query{}, false, nil
	}
	e := target.Client.Entry
	onErr := e.OnError
	if onErr == registries.OnErrorUnset {
		onErr = c.Policy.OnError
	}
	pol, err := s.Fields.Policy()
	if err != nil {
		// The container matched and must be answered for: the caller acts
		// on the error as on_error says.
		return resolver.Query{Target: target, Tag: img.Tag, OnError: onErr}, true, err
	}
	pol.Platforms, pol.TagSortMode = e.Platforms, e.TagSortMode
	pol.CacheTTL, pol.Fresh, pol.MaxCandidates = c.Policy.CacheTTL, fresh, c.Policy.MaxCandidateTags
	return resolver.Query{Target: target, Tag: img.Tag, Policy: pol, OnError: onErr}, true, nil
}

// Steering merges what steers the choice of img's tag, field by field, each
// from the most specific source: over (the object's annotations), then the
// longest policy.images rule, then the policy defaults.
func (c *Config) Steering(img registries.Image, over Steering) Steering {
	return over.Over(c.Policy.Rule(img)).Over(c.Policy.Defaults)
}
