// Package imageref parses and normalises image references as written in a
// container spec, and matches them against configured prefixes. It does no
// I/O and knows nothing of registries' entries, credentials or clients.
package imageref
