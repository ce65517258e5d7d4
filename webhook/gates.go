package webhook

import (
	"context"
	"errors"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// admitted is an admission past the gates: the objects decoded, and which
// containers are the webhook's to decide.
type admitted struct {
	obj, old *object
	ctrs     []container
	// ephemeralOnly decides ephemeral containers only (kubectl debug on a
	// Pod whose other containers come from a template).
	ephemeralOnly bool
	// optOutAdded: this UPDATE adds the skip label.
	optOutAdded bool
	// gateTook is what the namespace gate spent of the admission's budget;
	// gateWarning, when it could not verify the namespace and on_error let
	// the admission go on.
	gateTook    time.Duration
	gateWarning string
}

// gate decides whether the webhook looks at the admission's containers at
// all. When it does not, the Review says why and nothing else.
func (h *Handler) gate(ctx context.Context, req admission.Request) (admitted, *Review) {
	leave := func(reason string) (admitted, *Review) { return admitted{}, &Review{Reason: reason} }
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return leave("operation is not CREATE or UPDATE")
	}
	if h.protected[req.Namespace] {
		return leave("namespace " + req.Namespace + " is never mutated")
	}
	if req.SubResource != "" && req.SubResource != "ephemeralcontainers" {
		return leave("subresource " + req.SubResource + " is not mutated")
	}
	obj, err := decode(req.Kind.Group, req.Kind.Version, req.Kind.Kind, req.Object.Raw)
	var unsupported unsupportedKind
	if errors.As(err, &unsupported) {
		return admitted{}, &Review{Warnings: []string{err.Error() + "; left as it is"}}
	}
	if err != nil {
		return admitted{}, &Review{Refused: err, badRequest: true}
	}
	var old *object
	if req.Operation == admissionv1.Update && len(req.OldObject.Raw) > 0 {
		old, _ = decode(req.Kind.Group, req.Kind.Version, req.Kind.Kind, req.OldObject.Raw)
	}
	// An UPDATE that adds the label (kubectl label ... image-pin.io/skip=true)
	// is the user opting out: the images go back to their written form
	// (update.go). Any other object with the label is left as it is.
	optOutAdded := obj.meta.Labels[SkipLabel] == "true" && old != nil && old.meta.Labels[SkipLabel] != "true"
	if obj.meta.Labels[SkipLabel] == "true" && !optOutAdded {
		return leave("label " + SkipLabel + "=true")
	}
	if obj.meta.DeletionTimestamp != nil {
		// Whatever it carries, an object on its way out must be free to
		// lose its finalizers.
		return leave("the object is being deleted")
	}
	if obj.kind.templateOf != "" && obj.ownedBy(obj.kind.templateOf) {
		return leave(obj.kind.Kind + " of a " + obj.kind.templateOf + ": its template comes from the " + obj.kind.templateOf)
	}
	a := admitted{obj: obj, old: old, optOutAdded: optOutAdded}
	if owner := obj.templateOwner(); obj.kind.Kind == "Pod" && owner != "" {
		if req.SubResource != "ephemeralcontainers" {
			return leave("Pod of a " + owner + ": its images come from the pod template")
		}
		a.ephemeralOnly = true // kubectl debug adds them to this Pod only
	}
	if a.ctrs = obj.containers(); len(a.ctrs) == 0 {
		return leave("no containers")
	}
	// Last, as it may ask the API server: only an admission that would
	// look images up proves its namespace opted in.
	var rv *Review
	if rv, a.gateTook, a.gateWarning = h.checkNamespace(ctx, req); rv != nil {
		return admitted{}, rv
	}
	return a, nil
}
