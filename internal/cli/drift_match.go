package cli

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/image-pin/image-pin-webhook/api/v1alpha1"
	"github.com/image-pin/image-pin-webhook/config"
	"github.com/image-pin/image-pin-webhook/registries/imageref"
	"github.com/image-pin/image-pin-webhook/resolver"
)

// How drift tells which record a container was pinned through.
//
// A workload keeps the image as written in its image-pin.io/original-images
// annotation and the pin (REPO:TAG@sha256:…) in the container; a record
// keeps the query (entry name, repository at the entry's api_url, tag for
// digest, the policy fields) and the answer with its history. A record fits
// a container when every field drift can know agrees:
//
//   - with --config, the query the webhook would build now (the entry that
//     admits the namespace, the policy merged from the annotations, the
//     policy.images rule and defaults, the entry's platforms and
//     tagsortmode): every field is known, and the entry admits the
//     namespace, so a record is never shown to a namespace its entry does not
//     admit. The record whose queryHash is the query's is preferred (it is
//     the one; an entry with imagepullsecrets keys records by pull secret,
//     so several may fit), then one that gave the pinned digest, then one
//     the namespace created.
//   - without it, the repository (the written path, library/ for Docker
//     Hub's official images, or any namespace before a one-segment path, as
//     an entry's defaultns gives), the tag for digest, and the fields the
//     annotations set. The entries' namespaces are unknown, so drift assumes
//     that a record serves a namespace when that namespace's admissions
//     created it, or else when the container's pinned digest is one the
//     record gave (its digest or one in its history: the pin came from it).
//     Records the namespace created are preferred; when only other
//     namespaces' records fit and they come from different entries, drift
//     says "ambiguous" rather than guess whose answer applies.
//
// Ties go to the record resolved last, then to the lower name: the answer
// is the same on every run.

// Statuses of a container in the report.
const (
	statusDrifted   = "drifted"   // the record's digest is not the pinned one
	statusCurrent   = "current"   // pinned to the record's digest
	statusNoRecord  = "no-record" // pinned, and no record fits
	statusAmbiguous = "ambiguous" // without --config, records of several entries fit
	statusUnpinned  = "unpinned"  // left as written
)

// Kinds of containers, as the pod spec names their lists.
const (
	typeContainer = "container"
	typeInit      = "initContainer"
	typeEphemeral = "ephemeralContainer"
)

// driftContainer is one container of a workload as the webhook left it.
type driftContainer struct {
	Namespace, Kind, Name string
	Container, Type       string
	// Written is the container's original-images entry; Stored its image.
	Written, Stored string
	// Steering is what the annotations say of it; SteeringErr a malformed
	// annotation.
	Steering    config.Steering
	SteeringErr error
}

// driftItem is one line of the report.
type driftItem struct {
	Namespace     string `json:"namespace"`
	Kind          string `json:"kind"`
	Name          string `json:"name"`
	Container     string `json:"container"`
	ContainerType string `json:"containerType"`
	Status        string `json:"status"`
	// Image is the image as written (original-images).
	Image string `json:"image"`
	// Strategy and Constraint are the record's (--config: the query's).
	Strategy   string    `json:"strategy,omitempty"`
	Constraint string    `json:"constraint,omitempty"`
	Pinned     *driftPin `json:"pinned,omitempty"`
	Current    *driftPin `json:"current,omitempty"`
	// Since is when the pinned digest stopped being the record's answer:
	// the end of its history entry, else when the current one was resolved.
	Since  string `json:"since,omitempty"`
	Record string `json:"record,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// driftPin is a tag and its digest; the times are the record's.
type driftPin struct {
	Tag         string `json:"tag,omitempty"`
	Digest      string `json:"digest"`
	ResolvedAt  string `json:"resolvedAt,omitempty"`
	ConfirmedAt string `json:"confirmedAt,omitempty"`
}

// matcher judges containers against the records of the state namespace.
type matcher struct {
	cfg     *config.Config // nil without --config
	stateNS string
	// bySegment holds the records by the last segment of their repository,
	// which every way a container may name it keeps.
	bySegment map[string][]*v1alpha1.ImageResolution
}

func newMatcher(cfg *config.Config, stateNS string, recs []v1alpha1.ImageResolution) *matcher {
	m := &matcher{cfg: cfg, stateNS: stateNS, bySegment: map[string][]*v1alpha1.ImageResolution{}}
	for i := range recs {
		r := &recs[i]
		if r.Status.Digest == "" {
			continue
		}
		seg := r.Spec.Repository[strings.LastIndexByte(r.Spec.Repository, '/')+1:]
		m.bySegment[seg] = append(m.bySegment[seg], r)
	}
	return m
}

// recordWant is what a record must say to fit a container; nil and "" are what
// drift cannot know (no --config).
type recordWant struct {
	exact bool
	// ownOnly: the entry reads the workload's pull secrets, so each
	// namespace's records answer for its own credentials alone, and the
	// query built here (with no pull secrets) matches none by hash.
	ownOnly  bool
	hash     string
	registry string
	repo     string // the repository path, as an entry would look it up
	// anyNamespace: a one-segment path, which an entry's defaultns (unknown
	// without --config) may put under any namespace.
	anyNamespace bool
	tag          string // as written, latest when none
	strategy     string
	constraint   *string
	allowTags    *string
	ignoreTags   *string // joined with NUL
	platforms    *string // joined with NUL
	sortMode     *string
}

func strPtr(s string) *string { return &s }

func joinedNUL(l []string) string { return strings.Join(l, "\x00") }

// judge decides one container; ok is false for a container drift does not
// report on (written with a digest, or an original-images entry that no
// longer describes the image).
func (m *matcher) judge(c driftContainer) (driftItem, bool) {
	it := driftItem{Namespace: c.Namespace, Kind: c.Kind, Name: c.Name, Container: c.Container, ContainerType: c.Type, Image: c.Written}
	w, err1 := imageref.ParseImage(c.Written)
	s, err2 := imageref.ParseImage(c.Stored)
	switch {
	case err1 != nil || err2 != nil || w.Digest != "":
		return it, false // not a pin the webhook made
	case c.Stored == c.Written || s.Digest == "":
		it.Status, it.Reason = statusUnpinned, "left as written"
		return it, true
	case s.Repo != w.Repo:
		return it, false // original-images is stale: not about this image
	}
	it.Pinned = &driftPin{Tag: s.Tag, Digest: s.Digest}
	it.Status = statusNoRecord
	if c.SteeringErr != nil {
		it.Reason = c.SteeringErr.Error()
		return it, true
	}
	wt, reason := m.wantFor(c, w)
	if reason != "" {
		it.Reason = reason
		return it, true
	}
	if wt.exact {
		it.Strategy = wt.strategy
		if wt.constraint != nil {
			it.Constraint = *wt.constraint
		}
	}
	var fits []*v1alpha1.ImageResolution
	seg := w.Path()[strings.LastIndexByte(w.Path(), '/')+1:]
	for _, r := range m.bySegment[seg] {
		own := r.Spec.Namespace == c.Namespace
		if fitsRecord(r, wt, s) && (own || !wt.ownOnly && (wt.exact || gaveDigest(r, s.Digest))) {
			fits = append(fits, r)
		}
	}
	r, reason := pickRecord(fits, wt, c.Namespace, s.Digest)
	if r == nil {
		it.Reason = reason
		if reason == "" {
			it.Reason = fmt.Sprintf("no record in %s holds this query: records are kept with --state cluster, deleted after record_retention unused, and kept in memory only past max_records_per_namespace", m.stateNS)
		} else {
			it.Status = statusAmbiguous
		}
		return it, true
	}
	it.describe(r)
	return it, true
}

// wantFor puts together what a fitting record says, from the config when
// given, else from the written image and the annotations.
func (m *matcher) wantFor(c driftContainer, w imageref.Image) (recordWant, string) {
	tag := w.Tag
	if tag == "" {
		tag = "latest"
	}
	if m.cfg == nil {
		if c.Steering.Skip {
			return recordWant{}, "its annotations say strategy skip now: it was pinned before"
		}
		wt := recordWant{tag: tag, repo: w.Path(), anyNamespace: !strings.Contains(w.Path(), "/")}
		if w.ImplicitNamespace() {
			wt.repo = "library/" + w.Path()
		}
		f := c.Steering.Fields
		if f.Strategy != nil {
			wt.strategy = string(*f.Strategy)
		}
		if f.Constraint != nil {
			wt.constraint = strPtr(f.Constraint.Text)
		}
		if f.AllowTags != nil {
			wt.allowTags = strPtr(f.AllowTags.Text)
		}
		if f.IgnoreTags != nil {
			wt.ignoreTags = strPtr(joinedNUL(*f.IgnoreTags))
		}
		return wt, ""
	}
	q, ok, err := m.cfg.Query(w, c.Namespace, c.Steering, false)
	switch {
	case !ok:
		return recordWant{}, fmt.Sprintf("the config leaves it alone now (no entry admits namespace %s for it, or strategy skip): it was pinned before", c.Namespace)
	case err != nil:
		return recordWant{}, "the config and annotations give no query for it: " + err.Error()
	}
	p := q.Policy
	wt := recordWant{exact: true, ownOnly: q.Target.UsesPullSecrets(), hash: q.Hash(), registry: q.Target.Identity.Name, repo: q.Target.Repository, tag: q.KeyTag(),
		strategy: string(p.Strategy), platforms: strPtr(joinedNUL(p.Platforms))}
	if p.Strategy != resolver.Digest {
		wt.constraint, wt.allowTags = strPtr(""), strPtr("")
		if p.Strategy == resolver.Semver && p.Constraint != nil {
			wt.constraint = strPtr(p.Constraint.Text)
		}
		if p.AllowTags != nil {
			wt.allowTags = strPtr(p.AllowTags.Text)
		}
		wt.ignoreTags, wt.sortMode = strPtr(joinedNUL(p.IgnoreTags)), strPtr(p.TagSortMode.String())
	}
	return wt, ""
}

// fitsRecord reports whether r's query agrees with every field of wt and
// with the pinned image s. As in the resolver's key, a digest query is
// its tag and platforms; the other fields choose among tags.
func fitsRecord(r *v1alpha1.ImageResolution, wt recordWant, s imageref.Image) bool {
	sp := r.Spec
	if wt.registry != "" && sp.Registry != wt.registry {
		return false
	}
	if sp.Repository != wt.repo {
		ns, rest, ok := strings.Cut(sp.Repository, "/")
		if !wt.anyNamespace || !ok || ns == "" || rest != wt.repo && "library/"+rest != wt.repo {
			return false
		}
	}
	if wt.strategy != "" && sp.Strategy != wt.strategy {
		return false
	}
	if wt.platforms != nil && joinedNUL(sp.Platforms) != *wt.platforms {
		return false
	}
	if sp.Strategy == string(resolver.Digest) {
		// The webhook writes the tag as written: a pin under another tag did
		// not come from this record.
		return sp.Tag == wt.tag && s.Tag == wt.tag
	}
	for _, f := range []struct {
		want *string
		got  string
	}{
		{wt.allowTags, sp.AllowTags}, {wt.ignoreTags, joinedNUL(sp.IgnoreTags)}, {wt.sortMode, orNoneSortMode(sp.TagSortMode)},
	} {
		if f.want != nil && *f.want != f.got {
			return false
		}
	}
	return wt.constraint == nil || sp.Strategy != string(resolver.Semver) || sp.Constraint == *wt.constraint
}

func orNoneSortMode(s string) string {
	if s == "" {
		return resolver.TagSortMode(0).String()
	}
	return s
}

// gave reports whether r ever answered digest: now or in its history.
func gaveDigest(r *v1alpha1.ImageResolution, digest string) bool {
	if r.Status.Digest == digest {
		return true
	}
	for _, h := range r.Status.History {
		if h.Digest == digest {
			return true
		}
	}
	return false
}

// pick chooses among the records that fit; with none, it returns why (""
// when nothing fits at all).
func pickRecord(fits []*v1alpha1.ImageResolution, wt recordWant, ns, pinned string) (*v1alpha1.ImageResolution, string) {
	if len(fits) == 0 {
		return nil, ""
	}
	pool := fits
	if !wt.exact {
		var own []*v1alpha1.ImageResolution
		for _, r := range fits {
			if r.Spec.Namespace == ns {
				own = append(own, r)
			}
		}
		if len(own) > 0 {
			pool = own
		} else {
			entries := map[string]bool{}
			for _, r := range fits {
				entries[r.Spec.Registry] = true
			}
			if len(entries) > 1 {
				names := make([]string, 0, len(entries))
				for e := range entries {
					names = append(names, e)
				}
				slices.Sort(names)
				return nil, fmt.Sprintf("records of %d registry entries (%s) gave the pinned digest and none was created by namespace %s: pass --config, whose entries say which one serves it", len(names), strings.Join(names, ", "), ns)
			}
		}
	}
	score := func(r *v1alpha1.ImageResolution) []bool {
		return []bool{
			wt.hash != "" && r.Spec.QueryHash == wt.hash,
			gaveDigest(r, pinned),
			r.Spec.Namespace == ns,
			// Without --config the strategy may be unknown: digest, the
			// default, with the tag as written, is the likelier query.
			r.Spec.Strategy == string(resolver.Digest),
		}
	}
	best := slices.MaxFunc(pool, func(a, b *v1alpha1.ImageResolution) int {
		sa, sb := score(a), score(b)
		for i := range sa {
			if sa[i] != sb[i] {
				if sa[i] {
					return 1
				}
				return -1
			}
		}
		if c := a.Status.ResolvedAt.Compare(b.Status.ResolvedAt.Time); c != 0 {
			return c
		}
		return cmp.Compare(b.Name, a.Name) // the lower name wins
	})
	return best, ""
}

// describe fills the item from the record r it fits.
func (it *driftItem) describe(r *v1alpha1.ImageResolution) {
	st := r.Status
	it.Record, it.Strategy, it.Constraint = r.Name, r.Spec.Strategy, r.Spec.Constraint
	it.Current = &driftPin{Tag: st.Tag, Digest: st.Digest, ResolvedAt: recordTime(st.ResolvedAt.Time), ConfirmedAt: recordTime(st.ConfirmedAt.Time)}
	if st.Digest == it.Pinned.Digest {
		it.Status = statusCurrent
		return
	}
	it.Status, it.Since = statusDrifted, recordTime(st.ResolvedAt.Time)
	for _, h := range st.History {
		if h.Digest == it.Pinned.Digest {
			it.Since = recordTime(h.Until.Time)
			break
		}
	}
}

// stamp is a record's time as the report prints it: RFC 3339 in UTC, as
// records keep whole seconds.
func recordTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
