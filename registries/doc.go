// Package registries holds the configured registry entries at run time:
// matching an image reference to its entry by prefix, the entry's credential
// source, and the HTTP transport (TLS, scheme, rate limit, retries, metrics)
// every lookup against that registry goes through.
package registries
