// Package resolver turns one query (an image, the entry it goes to and its
// policy fields) into the tag to run and its digest: it selects among tags
// (digest, semver, newest-build, alphabetical, with a typed TagSortMode),
// looks digests up with manifest HEADs, and caches answers with in-flight
// dedup, brief failure caching and a last-known-good fallback. Written.Parse
// is the one parser of the four policy fields (strategy, constraint,
// allow-tags, ignore-tags) that config rules and annotations both call.
package resolver
