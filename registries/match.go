package registries

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/image-pin/image-pin-webhook/registries/client"
	"github.com/image-pin/image-pin-webhook/registries/credentials"
	"github.com/image-pin/image-pin-webhook/registries/imageref"
)

// Set is the configured entries, ready for matching, each with its client.
// It is immutable: a config reload builds a new one.
type Set struct {
	byLength []member // longest prefix first
	dflt     *member  // the default: true entry, if any
}

// member is an entry and the client built from it.
type member struct {
	entry  *Entry
	client *client.Client
}

// SetOption configures NewSet.
type SetOption func(*setOptions)

type setOptions struct {
	creds   *credentials.Cache
	metrics *client.Metrics
}

// WithCredentials sets the process-wide credential cache.
func WithCredentials(c *credentials.Cache) SetOption { return func(o *setOptions) { o.creds = c } }

// WithMetrics sets where registry requests are counted.
func WithMetrics(m *client.Metrics) SetOption { return func(o *setOptions) { o.metrics = m } }

// NewSet checks the entries as a whole (the caller validated each one), makes
// a client for each, and orders them for matching.
func NewSet(entries []*Entry, opts ...SetOption) (*Set, error) {
	var o setOptions
	for _, opt := range opts {
		opt(&o)
	}
	var hiddenEnv []string
	for _, e := range entries {
		if src := e.Credentials; src != nil && src.Kind == credentials.KindEnv {
			hiddenEnv = append(hiddenEnv, src.Var)
		}
	}
	if err := CheckEntries(entries); err != nil {
		return nil, err
	}
	s := &Set{}
	for _, e := range entries {
		c, err := client.New(e.Config, client.WithCredentials(o.creds), client.WithMetrics(o.metrics), client.WithHiddenEnv(hiddenEnv))
		if err != nil {
			return nil, fmt.Errorf("registry %q: %w", e.Name, err)
		}
		s.byLength = append(s.byLength, member{entry: e, client: c})
	}
	sort.SliceStable(s.byLength, func(i, j int) bool { return len(s.byLength[i].entry.Prefix) > len(s.byLength[j].entry.Prefix) })
	for i := range s.byLength {
		if s.byLength[i].entry.Default {
			s.dflt = &s.byLength[i]
		}
	}
	return s, nil
}

// CheckEntries checks the entries as a whole: no two share a prefix, at
// most one is the default.
func CheckEntries(entries []*Entry) error {
	return ValidateEntries(entries, field.NewPath("registries")).ToAggregate()
}

// ValidateEntries is CheckEntries returning every error, each under p
// (the list's path) with the entry's index and field.
func ValidateEntries(entries []*Entry, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := map[string]string{}
	dflt := ""
	for i, e := range entries {
		if other, dup := seen[e.Prefix]; dup {
			errs = append(errs, field.Invalid(p.Index(i).Child("prefix"), field.OmitValueType{},
				fmt.Sprintf("%q is also the prefix of registry %q", e.Prefix, other)))
		} else {
			seen[e.Prefix] = e.Name
		}
		if e.Default && dflt != "" {
			errs = append(errs, field.Invalid(p.Index(i).Child("default"), field.OmitValueType{},
				fmt.Sprintf("registry %q is already the default", dflt)))
		}
		if e.Default && dflt == "" {
			dflt = e.Name
		}
	}
	return errs
}

// Entries lists the entries, longest prefix first.
func (s *Set) Entries() []*Entry {
	out := make([]*Entry, len(s.byLength))
	for i, m := range s.byLength {
		out[i] = m.entry
	}
	return out
}

// Match finds the entry for img as used by an object in namespace ns: the
// longest prefix on a path-segment boundary, among the entries that allow ns.
// Docker Hub images without a matching entry fall back to the default entry.
func (s *Set) Match(img imageref.Image, ns string) (Target, bool) {
	var best *member
	bestLen := -1
	for i := range s.byLength {
		m := &s.byLength[i]
		if !m.entry.AllowsNamespace(ns) {
			continue
		}
		if n, ok := img.PrefixMatch(m.entry.Prefix); ok && n > bestLen {
			best, bestLen = m, n
		}
	}
	if best == nil && img.DockerHub() && s.dflt != nil && s.dflt.entry.AllowsNamespace(ns) {
		best = s.dflt
	}
	if best == nil {
		return Target{}, false
	}
	return Target{Entry: best.entry, Client: best.client, Repository: best.entry.Repository(img), Identity: best.client.Identity()}, true
}

// Repository is the path to look img up under at the entry's api_url.
// As in Argo CD Image Updater, the entry's defaultns names the namespace of
// a one-segment path on any registry; Docker Hub's is library unless set.
func (e *Entry) Repository(img imageref.Image) string {
	switch {
	case img.ImplicitNamespace() && e.DefaultNS == "":
		return "library/" + img.Path()
	case e.DefaultNS != "" && !strings.Contains(img.Path(), "/"):
		return e.DefaultNS + "/" + img.Path()
	}
	return img.Path()
}

// CloseIdleConnections closes the idle connections of every entry's pool,
// when a config reload replaces this Set (in-flight requests finish).
func (s *Set) CloseIdleConnections() {
	for _, m := range s.byLength {
		m.client.CloseIdleConnections()
	}
}
