package webhook

import (
	"fmt"
	"strings"

	"github.com/image-pin/image-pin-webhook/resolver"
)

// Labels and annotations of the contract.
const (
	domain            = "image-pin.io/"
	SkipLabel         = domain + "skip"
	OriginalImagesKey = domain + "original-images"
	restartedAtKey    = "kubectl.kubernetes.io/restartedAt"
	annStrategy       = "strategy"
	annConstraint     = "constraint"
	annAllowTags      = "allow-tags"
	annIgnoreTags     = "ignore-tags"
	annOriginalImages = "original-images"
)

// overrides is what an object's image-pin.io/ annotations ask for.
type overrides struct {
	object     resolver.Fields
	containers map[string]resolver.Fields
	keys       map[string][]string // container → annotation keys, for messages
	warnings   []string
}

// parseAnnotations reads the image-pin.io/ annotations. A malformed value is
// an error naming the annotation; an unknown key or one naming no container
// of the object is a warning.
func parseAnnotations(ann map[string]string, names map[string]bool) (overrides, error) {
	ov := overrides{containers: map[string]resolver.Fields{}, keys: map[string][]string{}}
	for k, v := range ann {
		rest, ok := strings.CutPrefix(k, domain)
		if !ok {
			continue
		}
		base, ctr, perContainer := strings.Cut(rest, ".")
		if base == annOriginalImages && !perContainer {
			continue
		}
		var f resolver.Fields
		switch base {
		case annStrategy:
			s, err := resolver.ParseStrategy(strings.TrimSpace(v))
			if err != nil {
				return ov, fmt.Errorf("annotation %s: %v", k, err)
			}
			f.Strategy = &s
		case annConstraint:
			c, err := resolver.ParseConstraint(strings.TrimSpace(v))
			if err != nil {
				return ov, fmt.Errorf("annotation %s: %v", k, err)
			}
			f.Constraint = c
		case annAllowTags:
			a, err := resolver.ParseAllowTags(strings.TrimSpace(v))
			if err != nil {
				return ov, fmt.Errorf("annotation %s: %v", k, err)
			}
			f.AllowTags = a
		case annIgnoreTags:
			g, err := resolver.ParseIgnoreTags(strings.Split(v, ","))
			if err != nil {
				return ov, fmt.Errorf("annotation %s: %v", k, err)
			}
			f.IgnoreTags = &g
		default:
			ov.warnings = append(ov.warnings, fmt.Sprintf("annotation %s: unknown image-pin.io annotation, ignored (known: strategy, constraint, allow-tags, ignore-tags)", k))
			continue
		}
		if perContainer && !names[ctr] {
			ov.warnings = append(ov.warnings, fmt.Sprintf("annotation %s: the object has no container %q, ignored", k, ctr))
			continue
		}
		if perContainer {
			ov.containers[ctr] = f.Over(ov.containers[ctr])
			ov.keys[ctr] = append(ov.keys[ctr], k)
		} else {
			ov.object = f.Over(ov.object)
			ov.keys[""] = append(ov.keys[""], k)
		}
	}
	// A constraint implies semver at the level that sets it.
	imply := func(f resolver.Fields) resolver.Fields {
		if f.Constraint != nil && f.Strategy == nil {
			s := resolver.Semver
			f.Strategy = &s
		}
		return f
	}
	ov.object = imply(ov.object)
	for c, f := range ov.containers {
		ov.containers[c] = imply(f)
	}
	return ov, nil
}

// forContainer merges the annotation fields for one container over rest.
func (ov overrides) forContainer(name string, rest resolver.Fields) resolver.Fields {
	return ov.containers[name].Over(ov.object).Over(rest)
}
