package resolver

// maxCachedTags bounds the tags held by the tag-list cache in all (about
// 10 MiB at 50 bytes a tag); the oldest lists go first. One listing is
// bounded by client.Client.ListTags.
const maxCachedTags = 200_000
