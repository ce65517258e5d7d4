package config

import (
	"errors"

	"github.com/image-pin/image-pin-webhook/resolver"
)

// SkipValue is the strategy field's value that asks for an image to be left
// alone. It is not a resolver strategy: the resolver is never asked about
// such an image, as Query decides to leave it alone.
const SkipValue = "skip"

// Steering is what one source (the policy defaults, a policy.images rule,
// the annotations of an object or of one container) says about an image:
// the resolver's policy fields, or that the image is left alone (strategy
// skip). Skip is decided here, in Query, and never reaches the resolver.
type Steering struct {
	resolver.Fields
	// Skip is strategy: skip. It fills the strategy field, so Fields.Strategy
	// is nil whenever it is set.
	Skip bool
}

// ParseSteering reads the policy fields of one source with resolver's one
// parser. The error names the field; the caller adds where it was written.
func ParseSteering(w resolver.Written) (Steering, error) {
	skip := w.Strategy != nil && *w.Strategy == SkipValue
	if skip {
		w.Strategy = nil
	}
	f, err := w.Parse()
	var se *resolver.StrategyError
	if errors.As(err, &se) {
		se.Also = []string{SkipValue}
	}
	if skip {
		// skip fills the strategy field, so a constraint beside it implies
		// nothing.
		f.Strategy = nil
	}
	return Steering{Fields: f, Skip: skip}, err
}

// Over returns s with the fields it leaves unset taken from t. Skip and a
// strategy are one field: either, from the more specific source, hides the
// other.
func (s Steering) Over(t Steering) Steering {
	if s.Skip || s.Strategy != nil {
		t.Strategy = nil
	} else {
		s.Skip = t.Skip
	}
	s.Fields = s.Fields.Over(t.Fields)
	return s
}
