package registries

import (
	"fmt"
	"net/url"
	"path"
	"strings"
	"time"
)

// OnError says what an admission does when an image of this registry cannot
// be resolved.
type OnError string

const (
	// OnErrorUnset defers to the policy's on_error.
	OnErrorUnset OnError = ""
	// OnErrorIgnore admits the object (pinned to the last known digest, if any).
	OnErrorIgnore OnError = "ignore"
	// OnErrorFail denies the admission.
	OnErrorFail OnError = "fail"
)

// DefaultLimit is the requests per second allowed to one registry when the
// entry sets no limit, as in Argo CD Image Updater.
const DefaultLimit = 20

// DefaultCredsTimeout bounds an ext: script when the entry sets no
// credstimeout; Argo CD Image Updater hard-codes the same 10s.
const DefaultCredsTimeout = 10 * time.Second

// Entry is one validated registry of the config, in Argo CD Image Updater's
// registries.conf terms plus this project's own fields.
type Entry struct {
	Name         string
	APIURL       *url.URL // scheme and host only
	Prefix       string   // normalised: no scheme, no trailing slash, Docker Hub as docker.io
	Ping         bool
	Insecure     bool
	Credentials  string // the raw source, e.g. secret:ns/name#key; never a secret value
	CredsExpire  time.Duration
	CredsTimeout time.Duration
	Default      bool
	DefaultNS    string
	TagSortMode  string
	Limit        int
	CAFile       string
	CAData       string
	OnError      OnError
	Namespaces   []string
	Platforms    []string

	creds *Source
}

// Host is the host[:port] lookups go to.
func (e *Entry) Host() string { return e.APIURL.Host }

// PlainHTTP reports whether api_url asks for plain HTTP.
func (e *Entry) PlainHTTP() bool { return e.APIURL.Scheme == "http" }

// Source is the parsed credential source, nil when the entry is anonymous.
func (e *Entry) Source() *Source { return e.creds }

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

// Validate checks the entry and fills in defaults. The error names the field;
// the caller names the entry.
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
	e.APIURL = &url.URL{Scheme: e.APIURL.Scheme, Host: e.APIURL.Host}
	if e.Prefix == "" {
		return fmt.Errorf("prefix: must be set")
	}
	e.Prefix = CanonicalPrefix(e.Prefix)
	if e.Limit < 0 {
		return fmt.Errorf("limit: %d must not be negative", e.Limit)
	}
	if e.Limit == 0 {
		e.Limit = DefaultLimit
	}
	if e.CredsExpire < 0 {
		return fmt.Errorf("credsexpire: must not be negative")
	}
	if e.CredsTimeout < 0 {
		return fmt.Errorf("credstimeout: must not be negative")
	}
	if e.CredsTimeout == 0 {
		e.CredsTimeout = DefaultCredsTimeout
	}
	switch e.OnError {
	case OnErrorUnset, OnErrorIgnore, OnErrorFail:
	default:
		return fmt.Errorf("on_error: %q must be ignore or fail", e.OnError)
	}
	switch e.TagSortMode {
	case "", "none", "latest-first", "latest-last":
	default:
		return fmt.Errorf("tagsortmode: %q must be none, latest-first or latest-last", e.TagSortMode)
	}
	for _, ns := range e.Namespaces {
		if _, err := path.Match(ns, ""); err != nil {
			return fmt.Errorf("namespaces: bad glob %q", ns)
		}
	}
	for _, p := range e.Platforms {
		if parts := strings.Split(p, "/"); len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
			return fmt.Errorf("platforms: %q must be os/arch or os/arch/variant", p)
		}
	}
	if e.Credentials != "" {
		src, err := ParseSource(e.Credentials)
		if err != nil {
			return fmt.Errorf("credentials: %w", err)
		}
		if err := checkCloudSource(*src, e.APIURL.Host); err != nil {
			return fmt.Errorf("credentials: %w", err)
		}
		e.creds = src
	}
	return nil
}
