package resolver_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/image-pin/image-pin-webhook/resolver"
)

func ptr(s string) *string { return &s }

// One parser reads the policy fields of every source (the config's rules
// and defaults, the annotations): what it implies is decided here once.
func TestTheFieldsOfOneSourceParseTheSameWhereverTheyAreWritten(t *testing.T) {
	tests := []struct {
		name         string
		w            resolver.Written
		wantStrategy string // "" for none
	}{
		{"nothing written sets nothing", resolver.Written{}, ""},
		{"a constraint without a strategy implies semver", resolver.Written{Constraint: ptr("~1.4")}, "semver"},
		{"a constraint beside a strategy keeps the strategy", resolver.Written{Strategy: ptr("alphabetical"), Constraint: ptr("~1.4")}, "alphabetical"},
		{"allow-tags and ignore-tags alone set no strategy", resolver.Written{AllowTags: ptr("any"), IgnoreTags: []string{"*-rc*"}}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := tc.w.Parse()
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if f.Strategy != nil {
				got = string(*f.Strategy)
			}
			if got != tc.wantStrategy {
				t.Errorf("strategy %q, want %q", got, tc.wantStrategy)
			}
		})
	}
}

func TestAFieldThatDoesNotParseIsAnErrorNamingTheField(t *testing.T) {
	tests := []struct {
		name string
		w    resolver.Written
		want resolver.Field
		says string
	}{
		{"an unknown strategy", resolver.Written{Strategy: ptr("newest")}, resolver.FieldStrategy, `"newest" is not a strategy: use digest, semver, newest-build or alphabetical`},
		{"skip, which is config's word and not a strategy", resolver.Written{Strategy: ptr("skip")}, resolver.FieldStrategy, `"skip" is not a strategy`},
		{"an empty strategy, which is written and wrong", resolver.Written{Strategy: ptr("")}, resolver.FieldStrategy, `"" is not a strategy`},
		{"a bad constraint", resolver.Written{Constraint: ptr("~>banana")}, resolver.FieldConstraint, `"~>banana" is not a semver constraint`},
		{"an allow-tags without regexp:", resolver.Written{AllowTags: ptr("^v1")}, resolver.FieldAllowTags, `"^v1" must be regexp:<expression> or any`},
		{"a bad ignore-tags glob", resolver.Written{IgnoreTags: []string{"ok", "["}}, resolver.FieldIgnoreTags, `"[" is not a valid glob`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.w.Parse()
			var fe *resolver.FieldError
			if !errors.As(err, &fe) || fe.Field != tc.want {
				t.Fatalf("err = %v, want a FieldError naming %s", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), string(tc.want)+": ") || !strings.Contains(fe.Err.Error(), tc.says) {
				t.Errorf("err = %q, want %q then %q", err, tc.want, tc.says)
			}
		})
	}
}
