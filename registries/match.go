package registries

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// Set is the configured entries, ready for matching. It is immutable: a
// config reload builds a new one.
type Set struct {
	byLength []*Client // longest prefix first
	dflt     *Client   // the default: true entry, if any
}

// SetOption configures NewSet.
type SetOption func(*setOptions)

type setOptions struct {
	creds     *Credentials
	metrics   *Metrics
	hiddenEnv []string
}

// WithCredentials sets the process-wide credential cache.
func WithCredentials(c *Credentials) SetOption { return func(o *setOptions) { o.creds = c } }

// WithMetrics sets where registry requests are counted.
func WithMetrics(m *Metrics) SetOption { return func(o *setOptions) { o.metrics = m } }

// NewSet checks the entries as a whole (the caller validated each one), makes
// a client for each, and orders them for matching.
func NewSet(entries []*Entry, opts ...SetOption) (*Set, error) {
	var o setOptions
	for _, opt := range opts {
		opt(&o)
	}
	for _, e := range entries {
		if src := e.Source(); src != nil && src.Kind == "env" {
			o.hiddenEnv = append(o.hiddenEnv, src.Var)
		}
	}
	if err := CheckEntries(entries); err != nil {
		return nil, err
	}
	s := &Set{}
	for _, e := range entries {
		c, err := newClient(e, o)
		if err != nil {
			return nil, fmt.Errorf("registry %q: %w", e.Name, err)
		}
		if e.Default {
			s.dflt = c
		}
		s.byLength = append(s.byLength, c)
	}
	sort.SliceStable(s.byLength, func(i, j int) bool { return len(s.byLength[i].Entry.Prefix) > len(s.byLength[j].Entry.Prefix) })
	return s, nil
}

// CheckEntries checks the entries as a whole: no two share a prefix, at
// most one is the default.
func CheckEntries(entries []*Entry) error {
	seen := map[string]string{}
	dflt := ""
	for _, e := range entries {
		if other, dup := seen[e.Prefix]; dup {
			return fmt.Errorf("registry %q: prefix: %q is also the prefix of registry %q", e.Name, e.Prefix, other)
		}
		seen[e.Prefix] = e.Name
		if e.Default && dflt != "" {
			return fmt.Errorf("registry %q: default: registry %q is already the default", e.Name, dflt)
		}
		if e.Default {
			dflt = e.Name
		}
	}
	return nil
}

// Clients lists the entries' clients, longest prefix first.
func (s *Set) Clients() []*Client { return s.byLength }

// Target is where to look an image up: the entry to use and the repository
// path at that entry's api_url.
type Target struct {
	Client     *Client
	Repository string
	// Identity is the entry's identity, which scopes every answer obtained
	// through it (see Identity); with the workload's pull secrets, their ID.
	Identity Identity

	pull *PullSecrets // imagepullsecrets: the admitted object's
}

// UsesPullSecrets reports whether the entry's credentials are the admitted
// object's own pull secrets (imagepullsecrets): a lookup then needs them,
// see WithPullSecrets.
func (t Target) UsesPullSecrets() bool {
	if t.Client == nil {
		return false
	}
	src := t.Client.Entry.Source()
	return src != nil && src.Kind == KindImagePullSecrets
}

// WithPullSecrets is t looking up with the pull secrets an object
// presents. Their ID joins t's identity, so that every answer, failure and
// in-flight lookup obtained with them is kept apart from other workloads'.
func (t Target) WithPullSecrets(p *PullSecrets) Target {
	t.pull = p
	t.Identity.CredentialID = p.ID()
	return t
}

// Do is Client.Do with the target's pull secrets, if it carries any.
func (t Target) Do(ctx context.Context, repo name.Repository, f func(http.RoundTripper) error) error {
	return t.Client.do(ctx, repo, t.pull, f)
}

// Match finds the entry for img as used by an object in namespace ns: the
// longest prefix on a path-segment boundary, among the entries that allow ns.
// Docker Hub images without a matching entry fall back to the default entry.
func (s *Set) Match(img Image, ns string) (Target, bool) {
	var best *Client
	bestLen := -1
	for _, cl := range s.byLength {
		if !cl.Entry.AllowsNamespace(ns) {
			continue
		}
		if n, ok := img.PrefixMatch(cl.Entry.Prefix); ok && n > bestLen {
			best, bestLen = cl, n
		}
	}
	if best == nil && img.DockerHub() && s.dflt != nil && s.dflt.Entry.AllowsNamespace(ns) {
		best = s.dflt
	}
	if best == nil {
		return Target{}, false
	}
	return best.target(img), true
}

func (c *Client) target(img Image) Target {
	return Target{Client: c, Repository: img.repository(c.Entry), Identity: c.identity}
}

// repository is the path to look the image up under at e's api_url.
// As in Argo CD Image Updater, the entry's defaultns names the namespace of
// a one-segment path on any registry; Docker Hub's is library unless set.
func (i Image) repository(e *Entry) string {
	switch {
	case i.implicitNS && e.DefaultNS == "":
		return "library/" + i.path
	case e.DefaultNS != "" && !strings.Contains(i.path, "/"):
		return e.DefaultNS + "/" + i.path
	}
	return i.path
}

// CloseIdleConnections closes the idle connections of every entry's pool,
// when a config reload replaces this Set (in-flight requests finish).
func (s *Set) CloseIdleConnections() {
	for _, c := range s.byLength {
		c.closeIdle()
	}
}
