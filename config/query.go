package config

import (
	"github.com/image-pin/image-pin-webhook/registries/imageref"
	"github.com/image-pin/image-pin-webhook/resolver"
)

// Query is one container's lookup and what the admission does when it
// fails: the resolver reads the first, the webhook acts on the second.
type Query struct {
	resolver.Query
	// OnError is the entry's on_error, else the policy's.
	OnError OnError
}

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
func (c *Config) Query(img imageref.Image, ns string, over Steering, fresh bool) (q Query, ok bool, err error) {
	target, ok := c.Registries.Match(img, ns)
	if !ok {
		return Query{}, false, nil
	}
	s := c.Steering(img, over)
	if s.Skip {
		return Query{}, false, nil
	}
	rp := c.RegistryPolicy(target.Entry)
	onErr := rp.OnError
	if onErr == OnErrorUnset {
		onErr = c.Policy.OnError
	}
	pol, err := s.Fields.Policy()
	if err != nil {
		// The container matched and must be answered for: the caller acts
		// on the error as on_error says.
		return Query{Query: resolver.Query{Target: target, Tag: img.Tag}, OnError: onErr}, true, err
	}
	pol.Platforms, pol.TagSortMode = rp.Platforms, rp.TagSortMode
	pol.CacheTTL, pol.Fresh, pol.MaxCandidates = c.Policy.CacheTTL, fresh, c.Policy.MaxCandidateTags
	return Query{Query: resolver.Query{Target: target, Tag: img.Tag, Policy: pol}, OnError: onErr}, true, nil
}

// Steering merges what steers the choice of img's tag, field by field, each
// from the most specific source: over (the object's annotations), then the
// longest policy.images rule, then the policy defaults.
func (c *Config) Steering(img imageref.Image, over Steering) Steering {
	return over.Over(c.Policy.Rule(img)).Over(c.Policy.Defaults)
}
