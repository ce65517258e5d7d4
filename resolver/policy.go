package resolver

import (
	"context"
	"fmt"
	"path"
	"regexp"
	"regexp/syntax"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
)

// Strategy is how a tag is chosen.
type Strategy string

// The strategies.
const (
	Digest       Strategy = "digest"
	Semver       Strategy = "semver"
	NewestBuild  Strategy = "newest-build"
	Alphabetical Strategy = "alphabetical"
)

// Constraint is a parsed semver constraint that remembers how it was written.
type Constraint struct {
	Text string
	c    *semver.Constraints
	pre  bool // the constraint names a pre-release, so pre-releases may be chosen
}

// ParseConstraint reads a Masterminds semver constraint such as ~1.4 or >=1.2 <2.
func ParseConstraint(s string) (*Constraint, error) {
	if len(s) > maxConstraintBytes {
		return nil, tooLong("constraint", len(s), maxConstraintBytes)
	}
	c, err := semver.NewConstraint(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not a semver constraint: %v", s, err)
	}
	return &Constraint{Text: s, c: c, pre: strings.Contains(s, "-")}, nil
}

// TagPattern is allow_tags: a regexp, or nil for any.
type TagPattern struct {
	Text string
	re   *regexp.Regexp
}

// ParseAllowTags reads regexp:<re> or any, as in Argo CD Image Updater.
func ParseAllowTags(s string) (*TagPattern, error) {
	if s == "any" {
		return &TagPattern{Text: s}, nil
	}
	if len(s) > len("regexp:")+maxAllowTagsBytes {
		return nil, fmt.Errorf("regexp of %d bytes is too complex: at most %d bytes", len(s)-len("regexp:"), maxAllowTagsBytes)
	}
	expr, ok := strings.CutPrefix(s, "regexp:")
	if !ok {
		return nil, fmt.Errorf("%.64q must be regexp:<expression> or any", s)
	}
	if err := checkRegexpCost(expr); err != nil {
		return nil, err
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, fmt.Errorf("%q: bad regexp: %v", s, err)
	}
	return &TagPattern{Text: s, re: re}, nil
}

// Bounds of an allow_tags regexp. Tenants write it (the allow-tags
// annotation) and every candidate tag of every lookup is matched against
// it, in time that grows with the compiled program as well as the tag: a
// 26-byte (a|aa|[a-z]{1,100}){1,10}$ compiles to 2,000 instructions and
// costs about 1 ms a tag. The expressions users write for tags (semver.org's
// own included) take under 100 instructions.
const (
	maxAllowTagsBytes = 1024
	maxAllowTagsInsts = 500
)

// checkRegexpCost refuses an expression too long or too costly to match
// against thousands of tags, before compiling it for use.
func checkRegexpCost(expr string) error {
	if len(expr) > maxAllowTagsBytes {
		return fmt.Errorf("regexp of %d bytes is too complex: at most %d bytes", len(expr), maxAllowTagsBytes)
	}
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return fmt.Errorf("%q: bad regexp: %v", expr, err)
	}
	prog, err := syntax.Compile(re.Simplify())
	if err != nil {
		return fmt.Errorf("%q: bad regexp: %v", expr, err)
	}
	if n := len(prog.Inst); n > maxAllowTagsInsts {
		return fmt.Errorf("regexp %.100q is too complex: it compiles to %d instructions, at most %d (write counted repeats such as {1,100} as + or *)", expr, n, maxAllowTagsInsts)
	}
	return nil
}

func (p *TagPattern) allows(tag string) bool { return p == nil || p.re == nil || p.re.MatchString(tag) }

// parseIgnoreTags checks a list of globs.
func parseIgnoreTags(globs []string) ([]string, error) {
	if err := checkIgnoreBounds(globs); err != nil {
		return nil, err
	}
	out := make([]string, 0, len(globs))
	for _, g := range globs {
		g = strings.TrimSpace(g)
		if g == "" {
			continue
		}
		if _, err := path.Match(g, ""); err != nil {
			return nil, fmt.Errorf("%q is not a valid glob", g)
		}
		out = append(out, g)
	}
	return out, nil
}

// Policy is a complete policy for one lookup.
type Policy struct {
	Strategy   Strategy
	Constraint *Constraint
	AllowTags  *TagPattern
	IgnoreTags []string
	// Platforms an index must cover (the registry entry's platforms).
	Platforms []string
	// TagSortMode is the entry's tagsortmode, for newest-build.
	TagSortMode TagSortMode
	// CacheTTL is how long an answer is served from the cache
	// (policy.cache_ttl); 0 turns the answer cache off, while in-flight
	// dedup and the last known good answer stay.
	CacheTTL time.Duration
	// Fresh bypasses the answer cache (a rollout restart asks for it).
	Fresh bool
	// MaxCandidates is how many candidate tags newest-build may read the
	// build dates of (policy.max_candidate_tags); 0 means
	// DefaultMaxCandidates. Past it the lookup is refused: it only bounds
	// cost, so it is not part of the cache key.
	MaxCandidates int
}

// DefaultMaxCandidates bounds newest-build: each candidate costs a manifest
// HEAD and a config read (more for an index), so 100 candidates are about
// 200 requests, 10s at the default limit of 20 requests a second.
const DefaultMaxCandidates = 100

func (p Policy) maxCandidates() int {
	if p.MaxCandidates > 0 {
		return p.MaxCandidates
	}
	return DefaultMaxCandidates
}

// Policy completes f: digest when no strategy is set; semver needs a constraint.
func (f Fields) Policy() (Policy, error) {
	p := Policy{Strategy: Digest, Constraint: f.Constraint, AllowTags: f.AllowTags}
	if f.Strategy != nil {
		p.Strategy = *f.Strategy
	}
	if f.IgnoreTags != nil {
		p.IgnoreTags = *f.IgnoreTags
	}
	if p.Strategy == Semver && p.Constraint == nil {
		return p, fmt.Errorf("strategy semver needs a constraint")
	}
	return p, nil
}

// candidates filters tags by allow_tags and ignore_tags. It gives up when
// ctx ends: a lookup runs detached from the admission that started it, and
// matching 50,000 tags must not go on burning CPU past its deadline. The
// deadline is looked at before every tag (a check costs tens of
// nanoseconds, one tag's matching at most about 100µs under the bounds of
// the fields), so a lookup stops within a tag of its deadline.
func (p Policy) candidates(ctx context.Context, tags []string) ([]string, error) {
	out := make([]string, 0, len(tags))
	for i, t := range tags {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("filtering tags by allow_tags and ignore_tags: stopped at the deadline after %d of %d: %w", i, len(tags), err)
		}
		if !p.AllowTags.allows(t) || ignored(t, p.IgnoreTags) {
			continue
		}
		out = append(out, t)
	}
	return out, nil
}

func ignored(tag string, globs []string) bool {
	for _, g := range globs {
		if ok, _ := path.Match(g, tag); ok {
			return true
		}
	}
	return false
}
