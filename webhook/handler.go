package webhook

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	lru "github.com/hashicorp/golang-lru/v2"
	"gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"

	"github.com/image-pin/image-pin-webhook/config"
	"github.com/image-pin/image-pin-webhook/internal/ctxutil"
	"github.com/image-pin/image-pin-webhook/registries/client"
	"github.com/image-pin/image-pin-webhook/registries/imageref"
	"github.com/image-pin/image-pin-webhook/resolver"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// Handler is the admission handler served at /mutate.
type Handler struct {
	images    *lru.Cache[string, parsedImage] // parsing a reference costs more than the rest of a warm admission
	config    func() *config.Config
	resolver  *resolver.Resolver
	protected map[string]bool
	metrics   *Metrics
	log       logr.Logger
	failures  *failureLimiter // one log line per image and cause a minute
	inFlight  *inFlight
}

// Option configures a Handler.
type Option func(*Handler)

// WithOwnNamespace names the webhook's own namespace, never mutated.
func WithOwnNamespace(ns string) Option {
	return func(h *Handler) {
		if ns != "" {
			h.protected[ns] = true
		}
	}
}

// WithHandlerMetrics sets where admissions are counted.
func WithHandlerMetrics(m *Metrics) Option { return func(h *Handler) { h.metrics = m } }

// WithLogger sets the logger used when the request's context carries none
// (controller-runtime's webhook.Admission puts its request-scoped one there).
// At the default level it logs each failure to resolve and, in report mode,
// each would-be pin; at debug level (V(1)) one line per admission.
func WithLogger(l logr.Logger) Option { return func(h *Handler) { h.log = l } }

// NewHandler makes the handler. cfg returns the config in force; it is
// called once per admission so a whole admission sees one snapshot.
func NewHandler(cfg func() *config.Config, r *resolver.Resolver, opts ...Option) *Handler {
	h := &Handler{config: cfg, resolver: r, protected: map[string]bool{"kube-system": true}, log: logr.Discard(),
		failures: newFailureLimiter(failureLogInterval, failureLogKeys), inFlight: newInFlight(DefaultMaxInFlight)}
	h.images, _ = lru.New[string, parsedImage](4096)
	for _, o := range opts {
		o(h)
	}
	return h
}

var _ admission.Handler = (*Handler)(nil)

// Handle answers one AdmissionReview.
func (h *Handler) Handle(ctx context.Context, req admission.Request) admission.Response {
	start := time.Now()
	resp, outcome := h.handle(ctx, req)
	h.metrics.admission(req.Kind.Kind, string(req.Operation), outcome)
	// Checked before the request's values are added: an admission that
	// logs nothing allocates nothing for it.
	if log, _ := h.baseLog(ctx); log.V(1).Enabled() {
		h.requestLog(ctx, req).V(1).Info("admission", "kind", req.Kind.Kind,
			"operation", req.Operation, "subresource", req.SubResource, "outcome", outcome,
			"patches", len(resp.Patches), "warnings", len(resp.Warnings), "duration", time.Since(start).String())
	}
	return resp
}

// Outcomes of an admission, as counted in image_pin_admissions_total.
const (
	outcomePatched   = "patched"
	outcomeReported  = "reported" // report mode: would have patched
	outcomeUnchanged = "unchanged"
	outcomeDenied    = "denied"
	outcomeError     = "error"
)

func (h *Handler) handle(ctx context.Context, req admission.Request) (admission.Response, string) {
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return admission.Allowed("operation is not CREATE or UPDATE"), outcomeUnchanged
	}
	if h.protected[req.Namespace] {
		return admission.Allowed("namespace " + req.Namespace + " is never mutated"), outcomeUnchanged
	}
	if req.SubResource != "" && req.SubResource != "ephemeralcontainers" {
		return admission.Allowed("subresource " + req.SubResource + " is not mutated"), outcomeUnchanged
	}
	obj, err := decode(req.Kind.Group, req.Kind.Version, req.Kind.Kind, req.Object.Raw)
	var unsupported unsupportedKind
	if errors.As(err, &unsupported) {
		return admission.Allowed("").WithWarnings("image-pin: " + err.Error() + "; left as it is"), outcomeUnchanged
	}
	if err != nil {
		return admission.Errored(http.StatusBadRequest, err), outcomeError
	}
	if obj.meta.Labels[SkipLabel] == "true" {
		return admission.Allowed("label " + SkipLabel + "=true"), outcomeUnchanged
	}
	if obj.meta.DeletionTimestamp != nil {
		// Whatever it carries, an object on its way out must be free to
		// lose its finalizers.
		return admission.Allowed("the object is being deleted"), outcomeUnchanged
	}
	switch {
	case req.Kind.Kind == "ReplicaSet" && obj.ownedBy("Deployment"):
		return admission.Allowed("ReplicaSet of a Deployment: its template comes from the Deployment"), outcomeUnchanged
	case req.Kind.Kind == "Job" && obj.ownedBy("CronJob"):
		return admission.Allowed("Job of a CronJob: its template comes from the CronJob"), outcomeUnchanged
	}
	ephemeralOnly := false
	if owner := obj.templateOwner(); req.Kind.Kind == "Pod" && owner != "" {
		if req.SubResource != "ephemeralcontainers" {
			return admission.Allowed("Pod of a " + owner + ": its images come from the pod template"), outcomeUnchanged
		}
		ephemeralOnly = true // kubectl debug adds them to this Pod only
	}
	ctrs := obj.containers()
	if len(ctrs) == 0 {
		return admission.Allowed("no containers"), outcomeUnchanged
	}
	names := make(map[string]bool, len(ctrs))
	for _, c := range ctrs {
		names[c.name] = true
	}
	var old *object
	if req.Operation == admissionv1.Update && len(req.OldObject.Raw) > 0 {
		old, _ = decode(req.Kind.Group, req.Kind.Version, req.Kind.Kind, req.OldObject.Raw)
	}
	ov, err := parseAnnotations(obj.meta.Annotations, names)
	if err != nil {
		if old != nil && !touchesImages(old, obj) {
			msg := err.Error() + "; admitted unchanged, as this update changes no image and no " + domain + " annotation"
			return admission.Allowed("").WithWarnings(limitWarnings([]string{msg})...), outcomeUnchanged
		}
		return admission.Denied(limitDenial(err.Error())), outcomeDenied
	}
	cfg := h.config()
	p := &plan{h: h, cfg: cfg, req: req, obj: obj, old: old, ov: ov, ctrs: ctrs, warnings: ov.warnings, ephemeralOnly: ephemeralOnly}
	p.build()
	// Detached from the request's cancellation: controller-runtime cancels
	// every request context when the server shuts down, and an admission in
	// flight should still be answered. resolve_timeout bounds it either way.
	rctx, cancel := ctxutil.DetachFor(ctx, cfg.Policy.ResolveTimeout)
	defer cancel()
	rctx = client.WithTenant(rctx, req.Namespace) // registries' rate limits are shared fairly by namespace
	rctx = resolver.WithAdmission(rctx, resolver.Admission{Namespace: req.Namespace, DryRun: req.DryRun != nil && *req.DryRun})
	p.resolve(rctx)
	h.logTasks(ctx, p)
	return p.respond()
}

// task is what happens to one container.
type task struct {
	c        container
	original string // the image form recorded in original-images and resolved
	img      imageref.Image
	query    config.Query // everything the lookup depends on, from config.Config.Query
	fixed    string       // set without asking the registry (a re-apply)

	out string // the image to write; "" leaves it
	err error
}

type plan struct {
	h        *Handler
	cfg      *config.Config
	req      admission.Request
	obj, old *object
	ov       overrides
	ctrs     []container
	tasks    []*task
	warnings []string
	records  map[string]string // original-images after this admission
	// ephemeralOnly resolves ephemeral containers only (kubectl debug on a
	// Pod whose other containers come from a template).
	ephemeralOnly bool
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
	for _, c := range p.ctrs {
		if p.ephemeralOnly && !c.ephemeral {
			continue
		}
		oldImg, existed := oldImages[c.name]
		// The old record's entry, only while it still describes the stored image.
		prior := ""
		if existed && p.h.describes(oldRec[c.name], oldImg, p.tagMayMove(c.name, oldRec[c.name])) {
			prior = oldRec[c.name]
		}
		original, fresh := c.image, false
		switch {
		case existed && restart:
			// Every image is looked up again from what was written; one
			// never pinned (a failure at CREATE) is looked up as it is.
			original, fresh = cmp.Or(prior, oldImg), true
			p.records[c.name] = original
		case existed && c.image == oldImg && !p.steeredAgain(c.name):
			p.records[c.name] = cmp.Or(prior, oldImg)
			continue // unchanged: never start a rollout
		case existed && prior != "" && c.image == prior && strings.Contains(oldImg, "@") &&
			!p.steeringChanged(c.name) && !p.skips(c.name, c.image):
			// A re-apply of the same manifest with the same annotations.
			p.records[c.name] = prior
			p.tasks = append(p.tasks, &task{c: c, original: prior, fixed: oldImg})
			continue
		default:
			p.records[c.name] = c.image
			// The request's own record is trusted only where this request
			// wrote it: our own output called again (reinvocation, a restart
			// or an undo changing restartedAt), never a record carried over.
			if r := newRec[c.name]; r != "" && r != c.image && (p.old == nil || r != oldRec[c.name] || restartMoved) &&
				p.h.describes(r, c.image, p.tagMayMove(c.name, r)) {
				p.records[c.name] = r
			}
		}
		img, err := p.h.parseImage(original)
		if err != nil {
			// Refused before any registry request; what happens follows
			// policy.on_error, as no entry can be trusted to match it.
			p.tasks = append(p.tasks, &task{c: c, original: original, query: config.Query{OnError: p.cfg.Policy.OnError}, err: err})
			continue
		}
		if img.Digest != "" {
			continue
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
			p.tasks = append(p.tasks, &task{c: c, original: original, query: q, err: err})
			continue
		}
		if !ok {
			continue
		}
		p.tasks = append(p.tasks, &task{c: c, original: original, img: img, query: q})
	}
}

// steering merges what steers the choice for one container of img, as the
// container's query does.
func (p *plan) steering(name string, img imageref.Image) config.Steering {
	return p.cfg.Steering(img, p.ov.forContainer(name))
}

// skips reports whether the container is now to be left alone.
func (p *plan) skips(name, image string) bool {
	img, err := p.h.parseImage(image)
	if err != nil {
		return false
	}
	return p.steering(name, img).Skip
}

// tagMayMove reports whether pinning written may choose another tag than the
// written one (every strategy but digest; skip chooses none).
func (p *plan) tagMayMove(name, written string) bool {
	img, err := p.h.parseImage(written)
	if err != nil {
		return false
	}
	s := p.steering(name, img)
	return s.Strategy != nil && *s.Strategy != resolver.Digest
}

// steeredAgain reports whether this request changes what steers the
// container: an image-pin.io/ annotation that applies to it, or the removal
// of the skip label (handle returned early had the request kept it). That
// is the user asking again, decided before "image unchanged, never start a
// rollout": removing an opt-out pins an image the opt-out kept as written.
func (p *plan) steeredAgain(name string) bool {
	return p.old.meta.Labels[SkipLabel] == "true" || p.steeringChanged(name)
}

// steeringChanged reports whether the request changes an image-pin.io/
// annotation that applies to the container: a re-apply that asks for another
// constraint or strategy is not the same manifest.
func (p *plan) steeringChanged(name string) bool {
	for _, base := range []string{annStrategy, annConstraint, annAllowTags, annIgnoreTags} {
		for _, k := range []string{domain + base, domain + base + "." + name} {
			if p.obj.meta.Annotations[k] != p.old.meta.Annotations[k] {
				return true
			}
		}
	}
	return false
}

// resolve runs every lookup at once, within ctx.
// Past policy.max_lookups, the remaining containers get an error (a warning
// or a denial per on_error) instead of a lookup: one object cannot cost more.
func (p *plan) resolve(ctx context.Context) {
	p.withPullSecrets(ctx)
	release, ok := p.slot(ctx)
	if !ok {
		return
	}
	defer release()
	maxLookups := p.cfg.Policy.MaxLookups // at least 1: config defaults it
	var wg sync.WaitGroup
	lookups := map[any]bool{} // containers with the same query share one lookup
	for _, t := range p.tasks {
		if t.fixed != "" {
			t.out = t.fixed
			continue
		}
		if t.err != nil {
			continue // failed before any lookup
		}
		id := t.query.ID()
		if !lookups[id] && len(lookups) >= maxLookups {
			t.err = fmt.Errorf("not looked up: the object has more than %d images to resolve (policy.max_lookups)", maxLookups)
			continue
		}
		lookups[id] = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := p.h.resolver.Resolve(ctx, t.query.Query)
			t.err = err
			// The last known digest stands in for a failed lookup, except in
			// a restart of an image pinned already: this replica's memory may
			// be older than the stored pin (made by another replica), and a
			// restart must never roll back.
			keep := res.Stale && t.query.Policy.Fresh && strings.Contains(t.c.image, "@")
			if res.Digest != "" && !keep && (err == nil || (res.Stale && t.query.OnError == config.OnErrorIgnore)) {
				t.out = t.img.Repo + ":" + res.Tag + "@" + res.Digest
			}
		}()
	}
	wg.Wait()
}

func (p *plan) respond() (admission.Response, string) {
	report := p.cfg.Policy.Mode == config.ModeReport
	var denials []string
	for _, t := range p.tasks {
		if t.err == nil {
			continue
		}
		msg := fmt.Sprintf("container %q image %s: %v", t.c.name, imageref.Quote(t.original), t.err)
		switch {
		case t.query.OnError == config.OnErrorFail && !report:
			denials = append(denials, msg)
		case t.out != "":
			p.warnings = append(p.warnings, msg+"; pinned to the last known digest")
		default:
			p.warnings = append(p.warnings, msg+"; left as it is")
		}
	}
	if len(denials) > 0 {
		return admission.Denied(limitDenial(denials...)).WithWarnings(limitWarnings(p.warnings)...), outcomeDenied
	}
	var patches []jsonpatch.JsonPatchOperation
	reported := false
	for _, t := range p.tasks {
		if t.out == "" || t.out == t.c.image {
			continue
		}
		if report {
			p.warnings = append(p.warnings, fmt.Sprintf("report mode: container %q image %q would be pinned to %q", t.c.name, t.c.image, t.out))
			reported = true
			continue
		}
		patches = append(patches, jsonpatch.NewOperation("replace", t.c.path, t.out))
		p.records[t.c.name] = t.original
	}
	if !report && p.req.SubResource == "" {
		if op, ok := p.annotationPatch(p.records); ok {
			patches = append(patches, op)
		}
	}
	warnings := limitWarnings(p.warnings)
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

// annotationPatch writes original-images when it differs from what the
// object carries. recorded holds an entry for every container and no other.
func (p *plan) annotationPatch(recorded map[string]string) (jsonpatch.JsonPatchOperation, bool) {
	cur, has := p.obj.meta.Annotations[OriginalImagesKey]
	if len(recorded) == 0 {
		return jsonpatch.JsonPatchOperation{}, false
	}
	b, _ := json.Marshal(recorded) // map keys come out sorted: stable output
	if has && cur == string(b) {
		return jsonpatch.JsonPatchOperation{}, false
	}
	if p.obj.meta.Annotations == nil {
		return jsonpatch.NewOperation("add", "/metadata/annotations", map[string]string{OriginalImagesKey: string(b)}), true
	}
	op := "add"
	if has {
		op = "replace"
	}
	return jsonpatch.NewOperation(op, "/metadata/annotations/"+strings.ReplaceAll(OriginalImagesKey, "/", "~1"), string(b)), true
}

type parsedImage struct {
	img imageref.Image
	err error
}

// parseImage parses ref once per distinct reference.
func (h *Handler) parseImage(ref string) (imageref.Image, error) {
	if p, ok := h.images.Get(ref); ok {
		return p.img, p.err
	}
	img, err := imageref.ParseImage(ref)
	h.images.Add(ref, parsedImage{img, err})
	return img, err
}

// restarted reports whether the pod template's restartedAt moved forward,
// as kubectl rollout restart does.
func restarted(old, cur *object) bool {
	if old.tmplMeta == nil || cur.tmplMeta == nil {
		return false
	}
	n, o := restartedAt(cur), restartedAt(old)
	if n == "" || n == o {
		return false
	}
	nt, err1 := time.Parse(time.RFC3339, n)
	ot, err2 := time.Parse(time.RFC3339, o)
	if err1 == nil && (o == "" || err2 == nil) {
		return o == "" || nt.After(ot)
	}
	return n > o
}

func restartedAt(o *object) string {
	if o.tmplMeta == nil {
		return ""
	}
	return o.tmplMeta.Annotations[restartedAtKey]
}

func sameImages(ctrs []container, old map[string]string) bool {
	for _, c := range ctrs {
		if old[c.name] != c.image {
			return false
		}
	}
	return true
}

// limitWarnings keeps warnings short enough for the API server, which
// truncates long ones, and few enough to read.
func limitWarnings(ws []string) []string {
	if len(ws) == 0 {
		return nil
	}
	sort.Strings(ws)
	out := make([]string, 0, len(ws))
	for i, w := range ws {
		if i == 20 {
			out = append(out, fmt.Sprintf("image-pin: %d more warnings", len(ws)-i))
			break
		}
		out = append(out, cut("image-pin: "+oneLine(w), maxMessageLength))
	}
	return out
}

// Bounds of a denial: the API server keeps the message in events and audit
// logs, and a tenant must not make it arbitrarily large.
const (
	maxDenials       = 10
	maxDenialMessage = 4096 // in all
	// maxMessageLength bounds one warning, and one reason of a denial.
	maxMessageLength = 500
)

// cut shortens s to at most n bytes, marking the cut.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
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

// oneLine folds a message onto one printable line: the API server drops a
// warning that holds control characters, and registry errors often end in
// a newline.
func oneLine(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }), " ")
}
