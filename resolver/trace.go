package resolver

import "context"

// Trace receives what lookups saw, for the resolve command. Like
// net/http/httptrace it rides on the context, so it needs no change to how
// Resolve is called; answers served from a cache are not traced.
type Trace struct {
	// Lookup is called once at the end of each registry lookup.
	Lookup func(LookupTrace)
}

// LookupTrace is one registry lookup: the tags listed (none for the digest
// strategy), those left by allow_tags and ignore_tags, and the tag chosen
// ("" when the lookup failed before choosing).
type LookupTrace struct {
	Repository string
	Strategy   string
	Constraint string
	AllowTags  string
	IgnoreTags []string
	Listed     int
	Candidates []string
	Tag        string
}

type traceKey struct{}

// WithTrace returns ctx carrying t.
func WithTrace(ctx context.Context, t *Trace) context.Context {
	return context.WithValue(ctx, traceKey{}, t)
}

// lookupTrace fills a LookupTrace during one lookup and hands it over at
// the end; it does nothing when the context carries no Trace.
type lookupTrace struct {
	t    *Trace
	info LookupTrace
}

func startTrace(ctx context.Context, repo string, p Policy) *lookupTrace {
	t, _ := ctx.Value(traceKey{}).(*Trace)
	if t == nil || t.Lookup == nil {
		return nil
	}
	lt := &lookupTrace{t: t, info: LookupTrace{Repository: repo, Strategy: string(p.Strategy), IgnoreTags: p.IgnoreTags}}
	if p.Constraint != nil && p.Strategy == Semver {
		lt.info.Constraint = p.Constraint.Text
	}
	if p.AllowTags != nil {
		lt.info.AllowTags = p.AllowTags.Text
	}
	return lt
}

func (lt *lookupTrace) tags(listed, candidates []string) {
	if lt != nil {
		lt.info.Listed, lt.info.Candidates = len(listed), candidates
	}
}

func (lt *lookupTrace) done(tag string) {
	if lt != nil {
		lt.info.Tag = tag
		lt.t.Lookup(lt.info)
	}
}
