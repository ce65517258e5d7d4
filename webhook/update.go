package webhook

import (
	"cmp"
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/image-pin/image-pin-webhook/config"
	"github.com/image-pin/image-pin-webhook/registries/imageref"
	"github.com/image-pin/image-pin-webhook/resolver"
)

// plan is one admission past the gates: what is decided for each container
// and the lookups that decide the rest.
type plan struct {
	admitted
	cfg      *config.Config
	req      admission.Request
	ov       overrides
	images   *imageCache
	resolver *resolver.Resolver
	inFlight *inFlight
	metrics  *Metrics
	// log is the request-scoped logger (logScoped), else the handler's;
	// requestLog adds the request's values to the latter when needed.
	log       logr.Logger
	logScoped bool

	decisions []Decision // one per container, in the object's order
	tasks     []*task    // the containers still to be decided by a lookup
	taskStore []task     // backs tasks: one allocation for all of them
	warnings  []string
	records   map[string]string // original-images after this admission

	// The old object's image-pin.io/ annotations, parsed when an added
	// opt-out needs what steered the pins it may undo (oldOverrides).
	oldOv     overrides
	oldOvErr  error
	oldOvRead bool
}

// requestLog is the admission's logger, as Handler.requestLog makes it.
func (p *plan) requestLog() logr.Logger {
	return withRequest(p.log, p.logScoped, p.req)
}

// task is a container whose image a lookup (or the old object) decides.
type task struct {
	at       int // its entry in plan.decisions
	c        container
	original string // the image form recorded in original-images and resolved
	img      imageref.Image
	query    config.Query // everything the lookup depends on, from config.Config.Query
	fixed    string       // set without asking the registry (a re-apply the webhook gave)
	// pin is the stored image of a re-apply or of an added opt-out, which
	// the UPDATE keeps (a re-apply) or undoes (restore: original comes
	// back) only where it is the webhook's own answer for query: one it
	// gave (Resolver.Gave, before any lookup: recognize), else the lookup's
	// (settle). See ours.
	pin     string
	restore bool

	out string // the image to write; "" leaves it
	err error
}

// Reasons of the decisions made without a lookup.
const (
	reasonUnchanged        = "the update leaves the image unchanged: never start a rollout"
	reasonDigest           = "the image already carries a digest"
	reasonFromTemplate     = "its image comes from the pod template"
	reasonNoEntry          = "no registry entry of the config serves it in this namespace"
	reasonSkip             = "its strategy is skip"
	reasonSkipLabel        = "the object is labelled " + SkipLabel + "=true"
	reasonRestored         = "the opt-out this update adds restores the image as written"
	reasonNotOurPin        = "the opt-out this update adds keeps the image as stored: it is not the webhook's pin of its original-images entry"
	reasonReapplied        = "a re-apply of the recorded image: the old pin, without a lookup"
	reasonReappliedFresh   = "a re-apply of the recorded image: the old pin, the webhook's answer for it"
	reasonReappliedUnknown = "a re-apply of the recorded image: the old pin, kept as stored, as the lookup that would tell whether the webhook gave it failed"
	reasonRepinned         = "a re-apply of the recorded image: pinned anew, as the stored digest is not one the webhook gave for it"
	reasonResolvedAsStored = "resolved to the image stored"
)

// decide records a decision made without a lookup.
func (p *plan) decide(c container, written string, o Outcome, reason string) {
	p.decisions = append(p.decisions, Decision{Container: c.name, Image: c.image, Written: written, Stored: c.image, Outcome: o, Reason: reason, c: c})
}

// lookUp queues a container for the lookups (or the old object) to decide.
func (p *plan) lookUp(t task) {
	t.at = len(p.decisions)
	p.decisions = append(p.decisions, Decision{Container: t.c.name, Image: t.c.image, Written: t.original, Stored: t.c.image, c: t.c})
	p.taskStore = append(p.taskStore, t) // never grows: one per container at most
	p.tasks = append(p.tasks, &p.taskStore[len(p.taskStore)-1])
}

// build decides per container, following the UPDATE rules of the contract,
// and what original-images will say for each container if the webhook leaves
// its image as the request has it.
func (p *plan) build() {
	var oldImages, oldRec map[string]string
	restart, restartMoved := false, false
	if p.old != nil {
		oldImages = map[string]string{}
		for _, c := range p.old.containers() {
			oldImages[c.name] = c.image
		}
		oldRec = originals(p.old.meta.Annotations)
		restart = restarted(p.old, p.obj) && sameImages(p.ctrs, oldImages)
		restartMoved = restartedAt(p.old) != restartedAt(p.obj)
	}
	newRec := originals(p.obj.meta.Annotations)
	p.records = make(map[string]string, len(p.ctrs))
	p.decisions = make([]Decision, 0, len(p.ctrs))
	p.taskStore = make([]task, 0, len(p.ctrs))
	p.tasks = make([]*task, 0, len(p.ctrs))
	for _, c := range p.ctrs {
		if p.ephemeralOnly && !c.ephemeral {
			p.decide(c, c.image, Skipped, reasonFromTemplate)
			continue
		}
		oldImg, existed := oldImages[c.name]
		// The old record's entry, only while it still describes the stored image.
		prior := ""
		if existed && p.describes(oldRec[c.name], oldImg, p.tagMayMove(c.name, oldRec[c.name])) {
			prior = oldRec[c.name]
		}
		original, fresh := c.image, false
		switch {
		case p.optOutAdded:
			// The skip label added: the written image comes back where
			// the image is the stored one; anything else is left alone.
			if existed && c.image == oldImg && prior != "" {
				p.restoring(c, prior, reasonSkipLabel)
				continue
			}
			p.records[c.name] = c.image
			p.decide(c, c.image, Skipped, reasonSkipLabel)
			continue
		case existed && c.image == oldImg && prior != "" && p.steeringChanged(c.name) && p.skips(c.name, prior):
			// kubectl annotate ... image-pin.io/strategy=skip: as a
			// re-apply with the annotation, the written image comes back.
			p.restoring(c, prior, reasonSkip)
			continue
		case existed && restart:
			// Every image is looked up again from what was written; one
			// never pinned (a failure at CREATE) is looked up as it is.
			original, fresh = cmp.Or(prior, oldImg), true
			p.records[c.name] = original
		case existed && c.image == oldImg && !p.steeredAgain(c.name):
			p.records[c.name] = cmp.Or(prior, oldImg)
			p.decide(c, p.records[c.name], Kept, reasonUnchanged)
			continue
		case existed && prior != "" && c.image == prior && strings.Contains(oldImg, "@") &&
			!p.steeringChanged(c.name) && !p.skips(c.name, c.image):
			// A re-apply of the same manifest with the same annotations:
			// the old pin stays where the webhook gave it (ours), and
			// never starts a rollout; else prior is pinned anew.
			p.records[c.name] = prior
			p.queryPin(c, prior, false, oldImg)
			continue
		default:
			p.records[c.name] = c.image
			// The request's own record is trusted only where this request
			// wrote it: our own output called again (reinvocation, a restart
			// or an undo changing restartedAt), never a record carried over.
			if r := newRec[c.name]; r != "" && r != c.image && (p.old == nil || r != oldRec[c.name] || restartMoved) &&
				p.describes(r, c.image, p.tagMayMove(c.name, r)) {
				p.records[c.name] = r
			}
		}
		p.query(c, original, fresh)
	}
}

// restoring decides a container whose opt-out this UPDATE adds, its image
// the stored one and its record's entry prior describing it: prior comes
// back only where the stored image is the webhook's own pin of prior. The
// record is state anyone who can write the object can write, and goes stale
// when an admission is missed (failurePolicy: Ignore), so that it names
// the same repository and tag proves nothing: a digest the user wrote since
// would give way to a floating tag. What proves it is an answer the webhook
// gave for prior under the steering that pinned it (the old object's): its
// answer now or one it gave before the tag moved (ours). Anything it cannot
// tell stays as stored.
func (p *plan) restoring(c container, prior, reason string) {
	p.records[c.name] = prior
	if prior == c.image {
		p.decide(c, prior, Skipped, reason) // nothing to bring back
		return
	}
	img, err := p.images.parse(prior)
	ov, ovErr := p.oldOverrides()
	if err == nil && ovErr == nil && img.Digest == "" {
		q, ok, err := p.cfg.Query(img, p.req.Namespace, ov.forContainer(c.name), false)
		if err == nil && ok {
			p.lookUp(task{c: c, original: prior, img: img, query: q, pin: c.image, restore: true})
			return
		}
	}
	// Nothing the webhook would pin prior with: it never made this pin.
	p.records[c.name] = c.image
	p.decide(c, c.image, Skipped, reasonNotOurPin)
	p.notOurPin(c, prior, nil)
}

// oldOverrides is the old object's image-pin.io/ annotations, parsed once.
func (p *plan) oldOverrides() (overrides, error) {
	if !p.oldOvRead {
		p.oldOvRead = true
		var names map[string]bool
		if hasDomainKeys(p.old.meta.Annotations) {
			names = map[string]bool{}
			for _, c := range p.old.containers() {
				names[c.name] = true
			}
		}
		p.oldOv, p.oldOvErr = parseAnnotations(p.old.meta.Annotations, names)
	}
	return p.oldOv, p.oldOvErr
}

// ours reports, without a registry request, whether t's stored image is
// an answer the webhook gave for t's query, written as it writes a pin:
// its answer now (fresh or not) or one of those it replaced (the tag moved
// since), in memory or, with --state cluster, in the query's record and its
// history (Resolver.Gave). The record of original-images is not evidence:
// anyone who edits the object can write it, and it goes stale when an
// admission is missed (failurePolicy: Ignore).
func (p *plan) ours(ctx context.Context, t *task) bool {
	rest, ok := strings.CutPrefix(t.pin, t.img.Repo+":")
	if !ok {
		return false
	}
	tag, digest, ok := strings.Cut(rest, "@")
	return ok && p.resolver.Gave(ctx, t.query.Query, tag, digest)
}

// recognize settles before any lookup each re-apply and restore whose
// stored image is the webhook's (ours): the re-apply keeps its pin, the
// restore brings the written image back, neither asks a registry.
func (p *plan) recognize(ctx context.Context) {
	for _, t := range p.tasks {
		if t.pin == "" || t.err != nil || t.fixed != "" || !p.ours(ctx, t) {
			continue
		}
		t.fixed = t.pin
		if t.restore {
			t.fixed = t.original
		}
	}
}

// settle decides, once the lookups are done, each re-apply and restore that
// recognize could not: the lookup's answer, written as the webhook writes a
// pin, tells. A restore brings the written image back where it is the
// stored image; any other container keeps its image, now recorded as
// written, with a warning, and leaves the lookups, so that nothing of it
// is reported as a failure or a pin. A re-apply keeps the stored pin where
// it is the answer, and where the lookup failed (it cannot tell: never a
// rollout on a failure), with a warning; else it is pinned anew, with a
// warning: the stored digest is not one the webhook gave.
func (p *plan) settle() {
	kept := p.tasks[:0]
	for _, t := range p.tasks {
		if t.pin == "" || t.fixed != "" {
			kept = append(kept, t)
			continue
		}
		ours := t.err == nil && t.out == t.pin
		d := &p.decisions[t.at]
		switch {
		case t.restore && ours:
			t.out = t.original
		case t.restore:
			d.Written, d.Outcome, d.Reason = t.c.image, Skipped, reasonNotOurPin
			p.records[t.c.name] = t.c.image
			p.notOurPin(t.c, t.original, t.err)
			continue
		case ours:
			d.Reason = reasonReappliedFresh
		case t.err != nil || t.out == "":
			p.warnings = append(p.warnings, fmt.Sprintf("container %q: image %s kept as stored for the re-apply of %s, though no answer of the webhook is known to be it: the lookup that would tell failed: %v",
				t.c.name, imageref.Quote(t.pin), imageref.Quote(t.original), t.err))
			t.out, t.err = t.pin, nil
			d.Reason = reasonReappliedUnknown
		default:
			p.warnings = append(p.warnings, fmt.Sprintf("container %q: the re-apply of %s pins it anew to %s: the stored %s is not a digest the webhook gave for it (its original-images entry says %s, which proves nothing)",
				t.c.name, imageref.Quote(t.original), imageref.Quote(t.out), imageref.Quote(t.pin), imageref.Quote(t.original)))
			d.Reason = reasonRepinned
		}
		kept = append(kept, t)
	}
	p.tasks = kept
}

// notOurPin warns that an added opt-out keeps c's image as stored.
func (p *plan) notOurPin(c container, prior string, err error) {
	msg := fmt.Sprintf("container %q: image %s kept as stored: it is not the webhook's pin of %s, its original-images entry, so the opt-out does not bring that back (re-apply the manifest with the opt-out to store the image it names)",
		c.name, imageref.Quote(c.image), imageref.Quote(prior))
	if err != nil {
		msg += fmt.Sprintf("; the lookup that would tell failed: %v", err)
	}
	p.warnings = append(p.warnings, msg)
}

// query decides a container whose image is to be looked up from original,
// or queues its lookup.
func (p *plan) query(c container, original string, fresh bool) { p.queryPin(c, original, fresh, "") }

// queryPin is query, for a re-apply whose stored image pin stays only
// where it is the webhook's answer (task.pin).
func (p *plan) queryPin(c container, original string, fresh bool, pin string) {
	img, err := p.images.parse(original)
	if err != nil {
		// Refused before any registry request; what happens follows
		// policy.on_error, as no entry can be trusted to match it.
		p.lookUp(task{c: c, original: original, query: config.Query{OnError: p.cfg.Policy.OnError}, err: err})
		return
	}
	if img.Digest != "" {
		p.decide(c, p.records[c.name], Kept, reasonDigest)
		return
	}
	q, ok, err := p.cfg.Query(img, p.req.Namespace, p.ov.forContainer(c.name), fresh)
	if err != nil {
		// semver without a constraint from any source: this container
		// cannot be resolved, which on_error decides like any failure.
		if keys := append(p.ov.keys[c.name], p.ov.keys[""]...); len(keys) > 0 {
			sort.Strings(keys)
			err = fmt.Errorf("%v (annotations %s, policy.images rules or policy.strategy)", err, strings.Join(keys, ", "))
		} else {
			err = fmt.Errorf("%v (from policy.images rules or policy.strategy)", err)
		}
		p.lookUp(task{c: c, original: original, query: q, err: err})
		return
	}
	if !ok {
		// Rare enough to match again for the decision's entry.
		target, matched := p.cfg.Registries.Match(img, p.req.Namespace)
		if !matched {
			p.decide(c, p.records[c.name], Skipped, reasonNoEntry)
			return
		}
		p.decide(c, p.records[c.name], Skipped, reasonSkip)
		p.decisions[len(p.decisions)-1].Entry = target.Entry.Name
		return
	}
	p.lookUp(task{c: c, original: original, img: img, query: q, pin: pin})
}

// steering merges what steers the choice for one container of img, as the
// container's query does.
func (p *plan) steering(name string, img imageref.Image) config.Steering {
	return p.cfg.Steering(img, p.ov.forContainer(name))
}

// skips reports whether the container is now to be left alone.
func (p *plan) skips(name, image string) bool {
	img, err := p.images.parse(image)
	if err != nil {
		return false
	}
	return p.steering(name, img).Skip
}

// tagMayMove reports whether pinning written may choose another tag than the
// written one (every strategy but digest; skip chooses none).
func (p *plan) tagMayMove(name, written string) bool {
	img, err := p.images.parse(written)
	if err != nil {
		return false
	}
	s := p.steering(name, img)
	return s.Strategy != nil && *s.Strategy != resolver.Digest
}

// steeredAgain reports whether this request changes what steers the
// container: an image-pin.io/ annotation that applies to it, or the removal
// of the skip label (the gates stop an UPDATE that keeps it). That is the
// user asking again, decided before "image unchanged, never start a
// rollout": removing an opt-out pins an image the opt-out kept as written.
func (p *plan) steeredAgain(name string) bool {
	return p.old.meta.Labels[SkipLabel] == "true" || p.steeringChanged(name)
}

// steeringChanged reports whether the request changes an image-pin.io/
// annotation that applies to the container: a re-apply that asks for another
// constraint or strategy is not the same manifest.
func (p *plan) steeringChanged(name string) bool {
	if p.old == nil {
		return false
	}
	for _, a := range steeringAnnotations {
		for _, k := range [2]string{a.Key(""), a.Key(name)} {
			if p.obj.meta.Annotations[k] != p.old.meta.Annotations[k] {
				return true
			}
		}
	}
	return false
}
