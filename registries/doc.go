// Package registries holds the configured registry entries at run time and
// routes an image to one: each entry's prefix, namespaces and default
// (SetDefaults, then Validate), the Set that matches an image reference to
// its entry (longest prefix on a path-segment boundary) and builds each
// entry's client (package client) with the process's credential cache
// (package credentials), the Target a lookup goes to, and the background
// Pinger that pings the entries asking for it (at start, after each config
// change and periodically). Image references are parsed by package imageref.
package registries
