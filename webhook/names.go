package webhook

import "github.com/image-pin/image-pin-webhook/resolver"

// The labels and annotations of the contract, spelled here once: the
// handler, the CLI (resolve's flags, doctor's probe) and the metrics read
// them from this table.
const (
	// Domain prefixes every label and annotation the webhook reads or writes.
	Domain = "image-pin.io/"
	// EnabledLabel opts a namespace in (the chart's namespaceSelector).
	EnabledLabel = Domain + "enabled"
	// SkipLabel, set to "true", opts one object out.
	SkipLabel = Domain + "skip"
	// OriginalImagesKey is the record of what the user wrote for each
	// container's stored image (records.go).
	OriginalImagesKey = Domain + "original-images"
	// ProbeAnnotation is the key doctor's dry-run Pod carries. No webhook
	// knows it, so every image-pin webhook answers it with the unknown
	// annotation warning, in report mode and for an image left alone too.
	ProbeAnnotation = Domain + "doctor"

	restartedAtKey = "kubectl.kubernetes.io/restartedAt" // set by kubectl rollout restart
)

// SteeringAnnotation is one of the annotations an app team may set to steer
// the choice of tag, written Domain+Name for the whole object or
// Domain+Name+"."+container for one container.
type SteeringAnnotation struct {
	Name  string         // the part after Domain, e.g. "constraint"
	Field resolver.Field // the policy field it sets
	Usage string         // what its value is, for help texts
}

// Key is the annotation for the whole object, or for one container when
// container is not "".
func (a SteeringAnnotation) Key(container string) string {
	if container == "" {
		return Domain + a.Name
	}
	return Domain + a.Name + "." + container
}

// steeringAnnotations is the table behind SteeringAnnotations. Read-only.
var steeringAnnotations = [...]SteeringAnnotation{
	{"strategy", resolver.FieldStrategy, "digest, semver, newest-build, alphabetical or skip"},
	{"constraint", resolver.FieldConstraint, "a semver constraint (implies semver)"},
	{"allow-tags", resolver.FieldAllowTags, "regexp:<re> or any"},
	{"ignore-tags", resolver.FieldIgnoreTags, "comma-separated globs"},
}

// SteeringAnnotations lists the annotations an app team may set, in the
// contract's order.
func SteeringAnnotations() []SteeringAnnotation { return steeringAnnotations[:] }

// steeringByName finds an annotation by the part after Domain.
func steeringByName(name string) (SteeringAnnotation, bool) {
	for _, a := range steeringAnnotations {
		if a.Name == name {
			return a, true
		}
	}
	return SteeringAnnotation{}, false
}
