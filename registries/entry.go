package registries

import (
	"fmt"
	"net/url"
	"path"
	"strings"

	"github.com/image-pin/image-pin-webhook/registries/client"
	"github.com/image-pin/image-pin-webhook/registries/credentials"
	"github.com/image-pin/image-pin-webhook/registries/imageref"
)

// Entry is one registry of the config, in Argo CD Image Updater's
// registries.conf terms plus this project's own fields: how to reach the
// registry (the embedded client.Config) and which images and namespaces it
// serves. What an admission does with its answers (on_error, platforms,
// tagsortmode) is policy, kept by the config package.
type Entry struct {
	client.Config
	Prefix     string // normalised: no scheme, no trailing slash, Docker Hub as docker.io
	Default    bool
	DefaultNS  string
	Namespaces []string
}

// Source is the parsed credential source, nil when the entry is anonymous
// (or its credentials field does not parse, which Validate refuses).
func (e *Entry) Source() *credentials.Source {
	if e.Credentials == "" {
		return nil
	}
	src, err := credentials.ParseSource(e.Credentials)
	if err != nil {
		return nil
	}
	return src
}

// AllowsNamespace reports whether an object in ns may use this entry.
func (e *Entry) AllowsNamespace(ns string) bool {
	if len(e.Namespaces) == 0 {
		return true
	}
	for _, pat := range e.Namespaces {
		if ok, _ := path.Match(pat, ns); ok {
			return true
		}
	}
	return false
}

// SetDefaults fills in what the entry leaves unset and puts what it sets in
// canonical form: api_url reduced to scheme and host (when its path is one
// Validate accepts), the prefix canonical, limit and credstimeout defaulted.
// Validate checks the result. (The method is not named Default: that is the
// default: field.)
func (e *Entry) SetDefaults() {
	if e.APIURL != nil {
		if p := strings.TrimRight(e.APIURL.Path, "/"); p == "" || p == "/v2" {
			e.APIURL = &url.URL{Scheme: e.APIURL.Scheme, Host: e.APIURL.Host}
		}
	}
	if e.Prefix != "" {
		e.Prefix = imageref.CanonicalPrefix(e.Prefix)
	}
	if e.Limit == 0 {
		e.Limit = client.DefaultLimit
	}
	if e.CredsTimeout == 0 {
		e.CredsTimeout = credentials.DefaultCredsTimeout
	}
}

// Validate checks a defaulted entry without changing it. The error names
// the field; the caller names the entry.
func (e *Entry) Validate() error {
	if e.Name == "" {
		return fmt.Errorf("name: must be set")
	}
	if e.APIURL == nil || e.APIURL.Host == "" {
		return fmt.Errorf("api_url: must be set")
	}
	if e.APIURL.Scheme != "http" && e.APIURL.Scheme != "https" {
		return fmt.Errorf("api_url: %q must start with http:// or https://", e.APIURL.String())
	}
	if p := strings.TrimRight(e.APIURL.Path, "/"); p != "" && p != "/v2" {
		return fmt.Errorf("api_url: %q must not have a path", e.APIURL.String())
	}
	if e.Prefix == "" {
		return fmt.Errorf("prefix: must be set")
	}
	if e.Limit < 0 {
		return fmt.Errorf("limit: %d must not be negative", e.Limit)
	}
	if e.CredsExpire < 0 {
		return fmt.Errorf("credsexpire: must not be negative")
	}
	if e.CredsTimeout < 0 {
		return fmt.Errorf("credstimeout: must not be negative")
	}
	for _, ns := range e.Namespaces {
		if _, err := path.Match(ns, ""); err != nil {
			return fmt.Errorf("namespaces: bad glob %q", ns)
		}
	}
	if e.Credentials != "" {
		src, err := credentials.ParseSource(e.Credentials)
		if err != nil {
			return fmt.Errorf("credentials: %w", err)
		}
		if err := src.Check(e.APIURL.Host); err != nil {
			return fmt.Errorf("credentials: %w", err)
		}
	}
	return nil
}
