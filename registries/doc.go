// Package registries holds the configured registry entries at run time and
// routes an image to one: each entry's prefix, namespaces and default, the
// Set that matches an image reference to its entry (longest prefix on a
// path-segment boundary), and the Target a lookup goes to. It builds each
// entry's client (package client) with the process's credential cache
// (package credentials); image references are parsed by package imageref.
package registries
