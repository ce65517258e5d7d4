package config_test

import (
	"testing"

	"github.com/image-pin/image-pin-webhook/config"
	"github.com/image-pin/image-pin-webhook/resolver"
)

func steering(t *testing.T, w resolver.Written) config.Steering {
	t.Helper()
	s, err := config.ParseSteering(w)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func str(s string) *string { return &s }

// Skip and a strategy are one field: the more specific source's wins,
// whichever of the two it is, while the other fields still merge.
func TestSkipAndAStrategyHideEachOtherFromLessSpecificSources(t *testing.T) {
	skip := resolver.Written{Strategy: str("skip")}
	semver := resolver.Written{Strategy: str("semver"), Constraint: str("~1.4")}
	digest := resolver.Written{Strategy: str("digest")}
	allow := resolver.Written{AllowTags: str("any")}
	tests := []struct {
		name         string
		over, under  resolver.Written
		wantSkip     bool
		wantStrategy string
	}{
		{"skip hides a strategy below it", skip, semver, true, ""},
		{"a strategy hides skip below it", digest, skip, false, "digest"},
		{"a constraint alone hides skip below it, as it implies semver", resolver.Written{Constraint: str("^1")}, skip, false, "semver"},
		{"a source that says nothing of the strategy lets skip through", allow, skip, true, ""},
		{"a source that says nothing of the strategy lets a strategy through", allow, digest, false, "digest"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := steering(t, tc.over).Over(steering(t, tc.under))
			got := ""
			if s.Strategy != nil {
				got = string(*s.Strategy)
			}
			if s.Skip != tc.wantSkip || got != tc.wantStrategy {
				t.Errorf("skip %v strategy %q, want %v and %q", s.Skip, got, tc.wantSkip, tc.wantStrategy)
			}
		})
	}
	merged := steering(t, skip).Over(steering(t, semver))
	if merged.Constraint == nil || merged.Constraint.Text != "~1.4" {
		t.Errorf("the constraint under skip was not merged: %+v", merged.Constraint)
	}
}

// skip is config's word: the resolver never sees it, and the message for a
// strategy that is neither says skip may be written too.
func TestSkipIsReadByConfigBeforeTheResolversParser(t *testing.T) {
	s := steering(t, resolver.Written{Strategy: str("skip"), Constraint: str("~1.4")})
	if !s.Skip || s.Strategy != nil {
		t.Errorf("skip beside a constraint: skip %v strategy %v, want skip and no strategy", s.Skip, s.Strategy)
	}
	_, err := config.ParseSteering(resolver.Written{Strategy: str("newest")})
	const want = `strategy: "newest" is not a strategy: use digest, semver, newest-build, alphabetical or skip`
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want %q", err, want)
	}
}
