package webhook

import "github.com/image-pin/image-pin-webhook/config"

// Outcome is what an admission did with one container's image.
type Outcome string

const (
	// Pinned: Pin is a digest of Written (from the registry, the cache or,
	// for a re-apply, the old object). Stored is Pin, except in report
	// mode, which stores nothing.
	Pinned Outcome = "pinned"
	// Kept: the image stays as the request has it: it carries a digest
	// already, or an UPDATE left it unchanged (never start a rollout).
	Kept Outcome = "kept"
	// Skipped: not resolved: no entry serves it in this namespace, its
	// strategy is skip, or an opt-out added on UPDATE restored Written.
	Skipped Outcome = "skipped"
	// Failed: not resolved; Err says why and OnError what followed: under
	// ignore the object is admitted (Pin is the last known digest, if
	// any), under fail it is denied.
	Failed Outcome = "failed"
)

// Decision is what the handler decided for one container. Handle renders
// every decision of an admission into its AdmissionResponse in one place
// (respond.go); the CLI reads them as they are.
type Decision struct {
	Container string
	Image     string // as the request carries it
	Written   string // what the user wrote for it: its original-images entry
	Stored    string // what the object stores once admitted
	Pin       string // the pinned reference chosen, "" when none
	Entry     string // the registry entry that serves it, "" when none
	Outcome   Outcome
	Reason    string         // for Kept and Skipped: why, in words
	Err       error          // for Failed: the cause
	OnError   config.OnError // for Failed: what on_error said

	c container // where its image field is
}

// Review is everything the handler decided about one admission.
type Review struct {
	// Decisions has one entry per container decided, in the object's
	// order: init containers, containers, ephemeral containers.
	Decisions []Decision
	// Reason says why the object was left alone as a whole, before any
	// container was decided ("" when one was).
	Reason string
	// Refused is why the object is refused as a whole: a malformed
	// annotation (a denial), or a request that is no valid object (a bad
	// request, badRequest set).
	Refused error
	// Warnings are about the object rather than one container (unknown
	// annotations, an unsupported kind), without the "image-pin: " prefix
	// the response adds.
	Warnings []string
	// Report is policy.mode report: Pins are warned about, never stored.
	Report bool

	badRequest bool
	kind       *Kind // the object's, which says where its pod spec is
	// The original-images record after this admission, and whether the
	// response is to write it (not for a subresource, nor in report mode).
	records     map[string]string
	writeRecord bool
	annotations map[string]string // the object's, as the request has them
}
