package config_test

import (
	"strings"
	"testing"

	"github.com/image-pin/image-pin-webhook/config"
	"github.com/image-pin/image-pin-webhook/resolver"
)

func TestCostBoundsHaveDefaultsAndRefuseNonsense(t *testing.T) {
	spec, err := config.Decode([]byte("registries: []\n"))
	if err != nil {
		t.Fatal(err)
	}
	if spec.Policy.MaxCandidateTags != resolver.DefaultMaxCandidates || spec.Policy.MaxLookups != config.DefaultMaxLookups {
		t.Errorf("defaults = %d, %d", spec.Policy.MaxCandidateTags, spec.Policy.MaxLookups)
	}
	for _, doc := range []string{"policy:\n  max_candidate_tags: 0\n", "policy:\n  max_lookups: -1\n"} {
		_, err := config.Decode([]byte(doc))
		key := strings.TrimSpace(strings.Split(strings.Split(doc, "\n")[1], ":")[0])
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%q: err = %v, want one naming %s", doc, err, key)
		}
	}
}
