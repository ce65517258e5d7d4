package resolver

import (
	"fmt"
)

// Fields is a partial policy from one source (policy defaults, a
// policy.images rule, an annotation); nil means the source does not say.
type Fields struct {
	Strategy   *Strategy
	Constraint *Constraint
	AllowTags  *TagPattern
	IgnoreTags *[]string
}

// Over returns f with the fields it leaves unset taken from g.
func (f Fields) Over(g Fields) Fields {
	if f.Strategy == nil {
		f.Strategy = g.Strategy
	}
	if f.Constraint == nil {
		f.Constraint = g.Constraint
	}
	if f.AllowTags == nil {
		f.AllowTags = g.AllowTags
	}
	if f.IgnoreTags == nil {
		f.IgnoreTags = g.IgnoreTags
	}
	return f
}

// Written is the policy fields of one source as its author wrote them: the
// policy defaults, a policy.images rule, or the image-pin.io/ annotations
// of an object or of one of its containers. A nil field is one the source
// does not set; an empty string is set, and wrong.
type Written struct {
	Strategy   *string
	Constraint *string
	AllowTags  *string
	IgnoreTags []string // globs
}

// SkipValue is the strategy field's value that asks for an image to be left
// alone. It is not a Strategy: the resolver is never asked about such an
// image, as its caller decides to leave it alone.
const SkipValue = "skip"

// Field names one of the four policy fields, as the config file spells it.
type Field string

// The policy fields.
const (
	FieldStrategy   Field = "strategy"
	FieldConstraint Field = "constraint"
	FieldAllowTags  Field = "allow_tags"
	FieldIgnoreTags Field = "ignore_tags"
)

// FieldError is a policy field whose value does not parse. Its message
// starts with the field's name; a caller whose source names each field
// otherwise (an annotation key) may use Err with that name instead.
type FieldError struct {
	Field Field
	Err   error
}

func (e *FieldError) Error() string { return string(e.Field) + ": " + e.Err.Error() }

func (e *FieldError) Unwrap() error { return e.Err }

// Parse is the one parser of the policy fields, for every source. skip
// reports strategy skip, with f.Strategy then nil: leaving an image alone is
// the caller's decision, not a strategy. A constraint without a strategy
// implies semver, in the source that sets it, so that it takes precedence
// over a strategy from a less specific source. An error is a *FieldError.
func (w Written) Parse() (f Fields, skip bool, err error) {
	if w.Strategy != nil {
		if *w.Strategy == SkipValue {
			skip = true
		} else {
			s, err := parseStrategy(*w.Strategy)
			if err != nil {
				return f, false, &FieldError{FieldStrategy, err}
			}
			f.Strategy = &s
		}
	}
	if w.Constraint != nil {
		c, err := ParseConstraint(*w.Constraint)
		if err != nil {
			return f, false, &FieldError{FieldConstraint, err}
		}
		f.Constraint = c
		if f.Strategy == nil && !skip {
			s := Semver
			f.Strategy = &s
		}
	}
	if w.AllowTags != nil {
		a, err := ParseAllowTags(*w.AllowTags)
		if err != nil {
			return f, false, &FieldError{FieldAllowTags, err}
		}
		f.AllowTags = a
	}
	if w.IgnoreTags != nil {
		g, err := parseIgnoreTags(w.IgnoreTags)
		if err != nil {
			return f, false, &FieldError{FieldIgnoreTags, err}
		}
		f.IgnoreTags = &g
	}
	return f, skip, nil
}

// parseStrategy reads a strategy name. The message lists skip too: it is
// what the author may write in the field.
func parseStrategy(s string) (Strategy, error) {
	if len(s) > maxStrategyBytes {
		return "", tooLong("strategy", len(s), maxStrategyBytes)
	}
	switch st := Strategy(s); st {
	case Digest, Semver, NewestBuild, Alphabetical:
		return st, nil
	}
	return "", fmt.Errorf("%q is not a strategy: use digest, semver, newest-build, alphabetical or %s", s, SkipValue)
}
