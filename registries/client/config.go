package client

import (
	"net/url"
	"time"

	"github.com/image-pin/image-pin-webhook/registries/credentials"
)

// Config is what a Client needs to reach one registry, as plain data: where
// it is, whom to trust, how fast to go and where its credentials come from.
// The registries package's Entry embeds it, adding what routes an image to
// it; a Client never sees the entry.
type Config struct {
	Name         string
	APIURL       *url.URL // scheme and host only
	Ping         bool
	Insecure     bool
	Credentials  *credentials.Source // parsed once, when the config is decoded; nil: anonymous
	CredsExpire  time.Duration
	CredsTimeout time.Duration
	Limit        int
	CAFile       string
	CAData       string
}

// Host is the host[:port] lookups go to.
func (c *Config) Host() string { return c.APIURL.Host }

// PlainHTTP reports whether api_url asks for plain HTTP.
func (c *Config) PlainHTTP() bool { return c.APIURL.Scheme == "http" }
