// Package resolver turns an image reference and a policy into the tag to run
// and its digest: it selects among tags (digest, semver, newest-build,
// alphabetical), looks digests up with manifest HEADs, and caches answers
// with in-flight dedup, brief failure caching and a last-known-good fallback.
package resolver
