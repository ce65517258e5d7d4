package webhook

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"unicode/utf8"

	"gomodules.xyz/jsonpatch/v2"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/image-pin/image-pin-webhook/config"
	"github.com/image-pin/image-pin-webhook/registries/imageref"
)

// Outcomes of an admission, as counted in image_pin_admissions_total.
const (
	outcomePatched   = "patched"
	outcomeReported  = "reported" // report mode: would have patched
	outcomeUnchanged = "unchanged"
	outcomeDenied    = "denied"
	outcomeError     = "error"
)

// review turns the plan's tasks into decisions once every lookup is done.
func (p *plan) review() *Review {
	r := &Review{Warnings: p.warnings, Report: p.cfg.Policy.Mode == config.ModeReport, records: p.records,
		writeRecord: p.req.SubResource == "", annotations: p.obj.meta.Annotations, kind: p.obj.kind}
	r.writeRecord = r.writeRecord && !r.Report
	// What each task stores once admitted: nothing in report mode, nor
	// when a failure under on_error: fail denies the object.
	stores := !r.Report
	for _, t := range p.tasks {
		stores = stores && !(t.err != nil && t.query.OnError == config.OnErrorFail)
	}
	changed := false
	for _, t := range p.tasks {
		d := &p.decisions[t.at]
		d.Entry = t.query.Target.Identity.Name
		switch {
		case t.restore:
			d.Outcome, d.Reason = Skipped, reasonRestored
		case t.err != nil:
			d.Outcome, d.Err, d.OnError, d.Pin = Failed, t.err, t.query.OnError, t.out
		case t.out != "":
			d.Outcome, d.Pin = Pinned, t.out
			if t.fixed != "" {
				d.Reason = reasonReapplied
			}
		default:
			d.Outcome, d.Reason = Kept, reasonResolvedAsStored
		}
		if stores && t.out != "" && t.out != d.Image {
			d.Stored = t.out
			p.records[d.Container] = d.Written
			changed = true
		}
	}
	if p.optOutAdded && !changed {
		// The skip label added with nothing to restore: the object is left
		// alone, as any labelled object is.
		r.writeRecord = false
	}
	r.Decisions = p.decisions
	return r
}

// render is the one place where decisions become a response: the patch,
// the warnings and denials (cut to the API server's limits), and the
// outcome counted in image_pin_admissions_total.
func (r *Review) render() (admission.Response, string) {
	switch {
	case r.badRequest:
		return admission.Errored(http.StatusBadRequest, r.Refused), outcomeError
	case r.Refused != nil:
		return admission.Denied(limitDenial(r.Refused.Error())), outcomeDenied
	case r.Reason != "":
		return admission.Allowed(r.Reason), outcomeUnchanged
	}
	warnings := append([]string(nil), r.Warnings...)
	var denials []string
	for _, d := range r.Decisions {
		if d.Outcome != Failed {
			continue
		}
		msg := fmt.Sprintf("container %q image %s: %v", d.Container, imageref.Quote(d.Written), d.Err)
		switch {
		case d.OnError == config.OnErrorFail && !r.Report:
			denials = append(denials, msg)
		case d.Pin != "":
			warnings = append(warnings, msg+"; pinned to the last known digest")
		default:
			warnings = append(warnings, msg+"; left as it is")
		}
	}
	if len(denials) > 0 {
		return admission.Denied(limitDenial(denials...)).WithWarnings(limitWarnings(warnings)...), outcomeDenied
	}
	patches := make([]jsonpatch.JsonPatchOperation, 0, len(r.Decisions)+1)
	reported := false
	for i, d := range r.Decisions {
		if r.Report && d.Outcome == Pinned && d.Pin != d.Image {
			warnings = append(warnings, fmt.Sprintf("report mode: container %q image %q would be pinned to %q", d.Container, d.Image, d.Pin))
			reported = true
		}
		if d.Stored != d.Image {
			// A *string marshals as the string does; pointing into the
			// decisions spares boxing a copy of each image.
			patches = append(patches, jsonpatch.NewOperation("replace", r.imagePath(d.c), &r.Decisions[i].Stored))
		}
	}
	if r.writeRecord {
		if op, ok := r.recordPatch(); ok {
			patches = append(patches, op)
		}
	}
	warnings = limitWarnings(warnings)
	if len(patches) == 0 {
		if reported {
			return admission.Allowed("").WithWarnings(warnings...), outcomeReported
		}
		return admission.Allowed("").WithWarnings(warnings...), outcomeUnchanged
	}
	// Our own operations, one per changed image and one for the record, not
	// PatchResponseFromRaw's diff of the whole object: a re-encoded object
	// differs from the raw one in fields we never touched (defaults, field
	// order, numbers), and a patch must only say what the webhook decided.
	// Response.Complete sets the patch type.
	return admission.Patched("", patches...).WithWarnings(warnings...), outcomePatched
}

// imagePath is the JSON pointer of c's image field.
func (r *Review) imagePath(c container) string { return imagePath(r.kind, c.list, c.index) }

// recordPatch writes original-images when it differs from what the object
// carries. records holds an entry for every container and no other.
func (r *Review) recordPatch() (jsonpatch.JsonPatchOperation, bool) {
	cur, has := r.annotations[OriginalImagesKey]
	if len(r.records) == 0 {
		return jsonpatch.JsonPatchOperation{}, false
	}
	rec := encodeRecords(r.records)
	if has && cur == rec {
		return jsonpatch.JsonPatchOperation{}, false
	}
	if r.annotations == nil {
		return jsonpatch.NewOperation("add", "/metadata/annotations", map[string]string{OriginalImagesKey: rec}), true
	}
	op := "add"
	if has {
		op = "replace"
	}
	return jsonpatch.NewOperation(op, recordPointer, rec), true
}

// recordPointer is the JSON pointer of the original-images annotation.
var recordPointer = "/metadata/annotations/" + strings.ReplaceAll(OriginalImagesKey, "/", "~1")

// limitWarnings keeps warnings short enough for the API server, which
// truncates long ones, and few enough to read.
func limitWarnings(ws []string) []string {
	if len(ws) == 0 {
		return nil
	}
	sort.Strings(ws)
	out := make([]string, 0, min(len(ws), maxWarnings+1))
	for i, w := range ws {
		if i == maxWarnings {
			out = append(out, fmt.Sprintf("image-pin: %d more warnings", len(ws)-i))
			break
		}
		out = append(out, cut("image-pin: "+oneLine(w), maxMessageLength))
	}
	return out
}

// limitDenial joins the reasons of a denial onto one line, each cut like a
// warning, at most maxDenials of them and maxDenialMessage bytes in all.
func limitDenial(msgs ...string) string {
	sort.Strings(msgs)
	var b strings.Builder
	b.WriteString("image-pin: ")
	for i, m := range msgs {
		if i == maxDenials {
			fmt.Fprintf(&b, "; and %d more", len(msgs)-i)
			break
		}
		m = cut(oneLine(m), maxMessageLength)
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(m)
	}
	return cut(b.String(), maxDenialMessage)
}

// cut shortens s to at most n bytes, marking the cut, on a rune boundary:
// the API server drops a warning that is not valid UTF-8.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n - len("...")
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "..."
}

// oneLine folds a message onto one printable line: the API server drops a
// warning that holds control characters, and registry errors often end in
// a newline.
func oneLine(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }), " ")
}
