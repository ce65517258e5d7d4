package config_test

import (
	"testing"

	"github.com/image-pin/image-pin-webhook/config"
)

// The contract lets a constraint come from any level, so semver without one
// is accepted at load wherever it is written, as policy.strategy always was.
func TestSemverWithoutAConstraintLoadsAtEveryLevel(t *testing.T) {
	for _, doc := range []string{
		"policy:\n  strategy: semver\n",
		"policy:\n  images:\n  - prefix: x.io/a\n    strategy: semver\n",
	} {
		if _, err := config.Parse([]byte(doc)); err != nil {
			t.Errorf("%q: %v", doc, err)
		}
	}
}
