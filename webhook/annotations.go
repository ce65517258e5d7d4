package webhook

import (
	"errors"
	"fmt"
	"strings"

	"github.com/image-pin/image-pin-webhook/config"
	"github.com/image-pin/image-pin-webhook/resolver"
)

// overrides is what an object's image-pin.io/ annotations ask for.
type overrides struct {
	object     config.Steering
	containers map[string]config.Steering
	keys       map[string][]string // container → annotation keys, for messages
	warnings   []string
}

// written is the annotations of one level (the object, or one container) as
// written, with the key that set each field, for messages.
type written struct {
	resolver.Written
	keys map[resolver.Field]string
}

// parseAnnotations reads the image-pin.io/ annotations. A malformed value is
// an error naming the annotation; an unknown key or one naming no container
// of the object is a warning.
func parseAnnotations(ann map[string]string, names map[string]bool) (overrides, error) {
	if !hasDomainKeys(ann) {
		return overrides{}, nil // most objects: nothing to read, nothing to allocate
	}
	ov := overrides{containers: map[string]config.Steering{}, keys: map[string][]string{}}
	object := written{keys: map[resolver.Field]string{}}
	containers := map[string]*written{}
	for k, v := range ann {
		rest, ok := strings.CutPrefix(k, Domain)
		if !ok || k == OriginalImagesKey {
			continue
		}
		base, ctr, perContainer := strings.Cut(rest, ".")
		a, known := steeringByName(base)
		if !known {
			ov.warnings = append(ov.warnings, fmt.Sprintf("annotation %s: unknown %s annotation, ignored (known: %s)", k, strings.TrimSuffix(Domain, "/"), knownSteering()))
			continue
		}
		field := a.Field
		w := &object
		if perContainer {
			if containers[ctr] == nil {
				containers[ctr] = &written{keys: map[resolver.Field]string{}}
			}
			w = containers[ctr]
		}
		w.keys[field] = k
		v := strings.TrimSpace(v)
		switch field {
		case resolver.FieldStrategy:
			w.Strategy = &v
		case resolver.FieldConstraint:
			w.Constraint = &v
		case resolver.FieldAllowTags:
			w.AllowTags = &v
		case resolver.FieldIgnoreTags:
			w.IgnoreTags = strings.Split(v, ",")
		}
	}
	// Every value is checked, a container's that the object lacks too: it
	// is malformed all the same.
	var err error
	if ov.object, err = object.parse(); err != nil {
		return ov, err
	}
	for ctr, w := range containers {
		s, err := w.parse()
		if err != nil {
			return ov, err
		}
		if !names[ctr] {
			for _, k := range w.keys {
				ov.warnings = append(ov.warnings, fmt.Sprintf("annotation %s: the object has no container %q, ignored", k, ctr))
			}
			continue
		}
		ov.containers[ctr] = s
		for _, k := range w.keys {
			ov.keys[ctr] = append(ov.keys[ctr], k)
		}
	}
	for _, k := range object.keys {
		ov.keys[""] = append(ov.keys[""], k)
	}
	return ov, nil
}

// hasDomainKeys reports whether ann holds an image-pin.io/ key other than
// the record.
func hasDomainKeys(ann map[string]string) bool {
	for k := range ann {
		if strings.HasPrefix(k, Domain) && k != OriginalImagesKey {
			return true
		}
	}
	return false
}

// knownSteering lists the steering annotations' names for messages.
func knownSteering() string {
	names := make([]string, len(steeringAnnotations))
	for i, a := range steeringAnnotations {
		names[i] = a.Name
	}
	return strings.Join(names, ", ")
}

// parse reads one level's fields. The annotation key names the field, so it
// stands in the message where the config file would name the field.
func (w written) parse() (config.Steering, error) {
	s, err := config.ParseSteering(w.Written)
	var fe *resolver.FieldError
	if errors.As(err, &fe) {
		return s, fmt.Errorf("annotation %s: %w", w.keys[fe.Field], fe.Err)
	}
	return s, err
}

// forContainer merges the annotation fields for one container: the
// container's, then the object's.
func (ov overrides) forContainer(name string) config.Steering {
	return ov.containers[name].Over(ov.object)
}
