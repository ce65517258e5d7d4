package resolver

import (
	"fmt"
	"strings"
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

// Parse is the one parser of the policy fields, for every source. A
// constraint without a strategy implies semver, in the source that sets
// it, so that it takes precedence over a strategy from a less specific
// source. An error is a *FieldError. Leaving an image alone is its
// caller's decision (config's skip), never a strategy: a caller that
// accepts other words in the strategy field reads them before Parse.
func (w Written) Parse() (f Fields, err error) {
	if w.Strategy != nil {
		s, err := parseStrategy(*w.Strategy)
		if err != nil {
			return f, &FieldError{FieldStrategy, err}
		}
		f.Strategy = &s
	}
	if w.Constraint != nil {
		c, err := ParseConstraint(*w.Constraint)
		if err != nil {
			return f, &FieldError{FieldConstraint, err}
		}
		f.Constraint = c
		if f.Strategy == nil {
			s := Semver
			f.Strategy = &s
		}
	}
	if w.AllowTags != nil {
		a, err := ParseAllowTags(*w.AllowTags)
		if err != nil {
			return f, &FieldError{FieldAllowTags, err}
		}
		f.AllowTags = a
	}
	if w.IgnoreTags != nil {
		g, err := parseIgnoreTags(w.IgnoreTags)
		if err != nil {
			return f, &FieldError{FieldIgnoreTags, err}
		}
		f.IgnoreTags = &g
	}
	return f, nil
}

// StrategyError is a strategy field that names no strategy. Also lists
// the other words the caller accepts in the field (config's skip), so that
// the message says everything the author may write.
type StrategyError struct {
	Value string
	Also  []string
}

func (e *StrategyError) Error() string {
	names := append([]string{string(Digest), string(Semver), string(NewestBuild), string(Alphabetical)}, e.Also...)
	return fmt.Sprintf("%q is not a strategy: use %s or %s", e.Value, strings.Join(names[:len(names)-1], ", "), names[len(names)-1])
}

// parseStrategy reads a strategy name.
func parseStrategy(s string) (Strategy, error) {
	if len(s) > maxStrategyBytes {
		return "", tooLong("strategy", len(s), maxStrategyBytes)
	}
	switch st := Strategy(s); st {
	case Digest, Semver, NewestBuild, Alphabetical:
		return st, nil
	}
	return "", &StrategyError{Value: s}
}
