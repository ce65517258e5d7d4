// Package client talks to one registry: the connection pool with its TLS
// settings, api_url's scheme, a rate limit shared fairly among tenants,
// retries, request metrics, one authenticated transport per repository,
// tag listing and the ping. It is built from plain data (Config) and asks
// the credentials package for what to authenticate with; it knows nothing
// of how images are routed to it.
package client
