package resolver

import (
	"strings"

	"github.com/image-pin/image-pin-webhook/registries"
	"github.com/image-pin/image-pin-webhook/registries/client"
)

// Query is everything one container's lookup depends on. It is put together
// in one place (config.Config.Query) and Resolve reads nothing else: not the
// entry, not the config.
type Query struct {
	// Target is the entry's client, the repository at its api_url and the
	// entry's identity, which scopes every cache and shared lookup.
	Target registries.Target
	// Tag is the tag as written; "" means latest.
	Tag string
	// Policy is complete, with the entry's platforms and tagsortmode.
	Policy Policy
}

// key identifies one answer: the entry it was obtained through, the
// repository, the tag (for digest, where the tag is given rather than
// chosen) and everything the choice of tag depends on.
type key struct {
	entry  client.Identity
	repo   string
	tag    string
	policy policyKey
}

// policyKey is the part of a Policy that decides the answer. CacheTTL and
// Fresh only decide whether a cached answer may be served.
type policyKey struct {
	strategy                             Strategy
	constraint, allow, ignore, platforms string
	sortMode                             TagSortMode
}

// repoKey scopes a tag list to the entry that listed it.
type repoKey struct {
	entry client.Identity
	repo  string
}

// tagKey scopes a tag's descriptor to the entry that read it.
type tagKey struct {
	repoKey
	tag string
}

// metaKey scopes a digest's metadata to the entry that read it: the
// content is addressed by digest, but having read it proves access, and a
// namespace the entry does not admit must not learn that it exists.
type metaKey struct {
	repoKey
	digest, platforms string
	withCreated       bool
}

func (q Query) key() key {
	p := q.Policy
	k := key{entry: q.Target.Identity, repo: q.Target.Repository, policy: policyKey{
		strategy: p.Strategy, platforms: strings.Join(p.Platforms, "\x00"),
	}}
	if p.Strategy == Digest {
		k.tag = q.tag()
		return k
	}
	if p.Constraint != nil && p.Strategy == Semver {
		k.policy.constraint = p.Constraint.Text
	}
	if p.AllowTags != nil {
		k.policy.allow = p.AllowTags.Text
	}
	k.policy.ignore = strings.Join(p.IgnoreTags, "\x00")
	k.policy.sortMode = p.TagSortMode
	return k
}

// QueryID is equal for two queries exactly when they share one lookup (and
// one cached answer); comparable, so callers that count lookups key a map
// with it. What it holds is the resolver's own.
type QueryID struct{ k key }

// ID is q's QueryID.
func (q Query) ID() QueryID { return QueryID{q.key()} }

func (q Query) repoKey() repoKey { return repoKey{entry: q.Target.Identity, repo: q.Target.Repository} }

func (q Query) tag() string {
	if q.Tag == "" {
		return "latest"
	}
	return q.Tag
}
