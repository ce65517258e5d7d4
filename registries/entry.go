package registries

import (
	"fmt"
	"net/url"
	"path"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"

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

// Validate checks a defaulted entry without changing it and returns every
// error, each under p (the entry's path in the config, e.g. registries[0])
// with its field. It never repeats the credentials field: a mistyped source
// may hold a secret.
func (e *Entry) Validate(p *field.Path) field.ErrorList {
	var errs field.ErrorList
	invalid := func(name, detail string) {
		errs = append(errs, field.Invalid(p.Child(name), field.OmitValueType{}, detail))
	}
	if e.Name == "" {
		errs = append(errs, field.Required(p.Child("name"), "must be set"))
	}
	switch {
	case e.APIURL == nil || e.APIURL.Host == "":
		errs = append(errs, field.Required(p.Child("api_url"), "must be set"))
	case e.APIURL.Scheme != "http" && e.APIURL.Scheme != "https":
		invalid("api_url", fmt.Sprintf("%q must start with http:// or https://", e.APIURL.String()))
	case strings.TrimRight(e.APIURL.Path, "/") != "" && strings.TrimRight(e.APIURL.Path, "/") != "/v2":
		invalid("api_url", fmt.Sprintf("%q must not have a path", e.APIURL.String()))
	}
	if e.Prefix == "" {
		errs = append(errs, field.Required(p.Child("prefix"), "must be set"))
	}
	if e.Limit < 0 {
		invalid("limit", fmt.Sprintf("%d must not be negative", e.Limit))
	}
	if e.CredsExpire < 0 {
		invalid("credsexpire", "must not be negative")
	}
	if e.CredsTimeout < 0 {
		invalid("credstimeout", "must not be negative")
	}
	for i, ns := range e.Namespaces {
		if _, err := path.Match(ns, ""); err != nil {
			errs = append(errs, field.Invalid(p.Child("namespaces").Index(i), field.OmitValueType{}, fmt.Sprintf("bad glob %q", ns)))
		}
	}
	if e.Credentials != nil && e.APIURL != nil {
		if err := e.Credentials.Check(e.APIURL.Host); err != nil {
			invalid("credentials", err.Error())
		}
	}
	return errs
}
