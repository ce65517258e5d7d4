package webhook

import (
	"context"
	"time"

	"github.com/go-logr/logr"

	"github.com/image-pin/image-pin-webhook/config"
	"github.com/image-pin/image-pin-webhook/internal/ctxutil"
	"github.com/image-pin/image-pin-webhook/registries/client"
	"github.com/image-pin/image-pin-webhook/resolver"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// Handler is the admission handler served at /mutate. One admission goes
// through the gates (gates.go), the UPDATE rules and the original-images
// record (update.go, records.go, restart.go), the lookups (lookup.go) and
// comes out as a Review of per-container decisions, rendered into the
// response in one place (respond.go).
type Handler struct {
	images    *imageCache
	config    func() *config.Config
	resolver  *resolver.Resolver
	protected map[string]bool
	metrics   *Metrics
	log       logr.Logger
	failures  *failureLimiter // one log line per image and cause a minute
	inFlight  *inFlight
	// namespaces proves the request's namespace opted in (namespaces.go);
	// nil believes it.
	namespaces NamespaceGate
	nsLog      *namespaceLog
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
	h := &Handler{config: cfg, resolver: r, protected: map[string]bool{systemNamespace: true}, log: logr.Discard(),
		failures: newFailureLimiter(failureLogInterval, failureLogKeys), inFlight: newInFlight(DefaultMaxInFlight),
		images: newImageCache(defaultParsedImages), nsLog: newNamespaceLog()}
	for _, o := range opts {
		o(h)
	}
	return h
}

var _ admission.Handler = (*Handler)(nil)

// Handle answers one AdmissionReview: Decide, then the Review's response.
func (h *Handler) Handle(ctx context.Context, req admission.Request) admission.Response {
	start := time.Now()
	rv := h.Decide(ctx, req)
	resp, outcome := rv.render()
	h.metrics.admission(req.Kind.Kind, string(req.Operation), outcome)
	h.logDecisions(ctx, req, rv)
	// Checked before the request's values are added: an admission that
	// logs nothing allocates nothing for it.
	if log, _ := h.baseLog(ctx); log.V(1).Enabled() {
		h.requestLog(ctx, req).V(1).Info("admission", "kind", req.Kind.Kind,
			"operation", req.Operation, "subresource", req.SubResource, "outcome", outcome,
			"patches", len(resp.Patches), "warnings", len(resp.Warnings), "duration", time.Since(start).String())
	}
	return resp
}

// Decide makes every decision of one admission, per container, without
// rendering them: the CLI reads them as they are.
func (h *Handler) Decide(ctx context.Context, req admission.Request) *Review {
	a, rv := h.gate(ctx, req)
	if rv != nil {
		return rv
	}
	var names map[string]bool // the containers an annotation may name
	if hasDomainKeys(a.obj.meta.Annotations) {
		names = make(map[string]bool, len(a.ctrs))
		for _, c := range a.ctrs {
			names[c.name] = true
		}
	}
	ov, err := parseAnnotations(a.obj.meta.Annotations, names)
	if err != nil {
		if a.old != nil && !touchesImages(a.old, a.obj) {
			msg := err.Error() + "; admitted unchanged, as this update changes no image and no " + Domain + " annotation"
			return &Review{Warnings: []string{msg}}
		}
		return &Review{Refused: err}
	}
	cfg := h.config()
	p := &plan{admitted: a, cfg: cfg, req: req, ov: ov, warnings: ov.warnings, images: h.images,
		resolver: h.resolver, inFlight: h.inFlight, metrics: h.metrics}
	if a.gateWarning != "" {
		p.warnings = append(p.warnings, a.gateWarning)
	}
	p.log, p.logScoped = h.baseLog(ctx)
	p.build()
	// Detached from the request's cancellation: controller-runtime cancels
	// every request context when the server shuts down, and an admission in
	// flight should still be answered. resolve_timeout bounds it either way.
	rctx, cancel := ctxutil.DetachFor(ctx, cfg.Policy.ResolveTimeout-a.gateTook)
	defer cancel()
	rctx = client.WithTenant(rctx, req.Namespace) // registries' rate limits are shared fairly by namespace
	rctx = resolver.WithAdmission(rctx, resolver.Admission{Namespace: req.Namespace, DryRun: req.DryRun != nil && *req.DryRun})
	p.resolve(rctx)
	return p.review()
}
