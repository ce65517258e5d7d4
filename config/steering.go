package config

import (
	"github.com/image-pin/image-pin-webhook/resolver"
)

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
	f, skip, err := w.Parse()
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
