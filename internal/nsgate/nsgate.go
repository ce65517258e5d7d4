// Package nsgate is the webhook's NamespaceGate: whether a namespace exists
// and carries image-pin.io/enabled=true, from a metadata-only informer on
// Namespaces (metav1.PartialObjectMetadata: no spec or status is cached,
// and only names and labels are kept), with a live metadata GET when the
// informer does not know the namespace opted in, so that a namespace
// created and labelled just before its first object is still pinned.
//
// The live GETs are what a flood of forged reviews naming made-up
// namespaces could multiply: they are rate-limited (one token bucket for
// the process) and their negative answers kept for a while in a bounded
// cache, so such a flood costs the API server a bounded number of GETs,
// whatever the names. An informer event for a namespace clears its
// negative answer.
package nsgate

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/hashicorp/golang-lru/v2/expirable"
	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Label is the opt-in label, and Value its value, unless Options say
// otherwise.
const (
	Label = "image-pin.io/enabled"
	Value = "true"
)

// The defaults of the live lookups, each with its reason.
const (
	// DefaultGetsPerSecond and DefaultBurst bound the live GETs: a real
	// namespace needs one, when its first object comes before the
	// informer's event (milliseconds), so a handful a second is plenty; a
	// flood of made-up names costs the API server no more.
	DefaultGetsPerSecond = 5
	DefaultBurst         = 20
	// DefaultNegativeSize and DefaultNegativeTTL bound the cache of names
	// a GET found absent or not opted in: a flood repeating one name costs
	// one GET per TTL; the TTL is short as a namespace labelled meanwhile
	// is normally cleared by its informer event first.
	DefaultNegativeSize = 4096
	DefaultNegativeTTL  = 10 * time.Second
)

// ErrRateLimited is OptedIn's error when the informer does not know the
// namespace opted in and the live lookups are past their rate.
var ErrRateLimited = errors.New("the namespace is not in the webhook's watch (yet), and live namespace lookups are past their rate limit")

// Options configure New.
type Options struct {
	// Cache holds the metadata-only Namespace informer; New's caller
	// starts it (or gives one already running). Made by NewCache.
	Cache cache.Cache
	// Reader makes the live GETs (the manager's API reader: no cache).
	Reader client.Reader
	// Limiter bounds the live GETs; nil: DefaultGetsPerSecond,
	// DefaultBurst.
	Limiter *rate.Limiter
	// Log says when the namespaces cannot be watched yet.
	Log logr.Logger
	// Label and Value: the opt-in label; "" for Label and Value.
	Label, Value string
	// NegativeSize and NegativeTTL: 0 for the defaults.
	NegativeSize int
	NegativeTTL  time.Duration
}

// Gate is a webhook.NamespaceGate.
type Gate struct {
	cache    cache.Cache
	reader   client.Reader
	limiter  *rate.Limiter
	negative *expirable.LRU[string, struct{}]
	label    string
	value    string
	log      logr.Logger

	mu     sync.RWMutex
	known  map[string]bool // name: opted in, as the informer last saw it
	events uint64          // informer events seen: a GET's answer older than one is not kept
	synced func() bool
}

// NewCache makes a cache whose only informer is on Namespaces' metadata,
// each kept as its name and labels.
func NewCache(cfg *rest.Config, o cache.Options) (cache.Cache, error) {
	// A default transform, not one by object: a ByObject entry needs the
	// API server's REST mapping at once, and a replica that cannot reach
	// it must still start (and pin).
	o.DefaultTransform = keepNameAndLabels
	return cache.New(cfg, o)
}

func namespaceMeta() *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
	return m
}

// keepNameAndLabels is the informer's transform: a namespace's
// annotations (a last-applied-configuration may be large) and managed
// fields are not the gate's to keep.
func keepNameAndLabels(obj any) (any, error) {
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return obj, nil
	}
	return &metav1.PartialObjectMetadata{TypeMeta: m.TypeMeta, ObjectMeta: metav1.ObjectMeta{
		Name: m.Name, UID: m.UID, ResourceVersion: m.ResourceVersion, Labels: m.Labels}}, nil
}

// New makes the gate; Start runs it (or Register, with a cache whose owner
// starts it).
func New(o Options) *Gate {
	if o.Limiter == nil {
		o.Limiter = rate.NewLimiter(DefaultGetsPerSecond, DefaultBurst)
	}
	if o.Label == "" {
		o.Label, o.Value = Label, Value
	}
	if o.NegativeSize <= 0 {
		o.NegativeSize = DefaultNegativeSize
	}
	if o.NegativeTTL <= 0 {
		o.NegativeTTL = DefaultNegativeTTL
	}
	return &Gate{cache: o.Cache, reader: o.Reader, limiter: o.Limiter, label: o.Label, value: o.Value, log: o.Log,
		negative: expirable.NewLRU[string, struct{}](o.NegativeSize, nil, o.NegativeTTL),
		known:    map[string]bool{}, synced: func() bool { return false }}
}

// Register adds the gate's handlers to the cache's Namespace informer. The
// cache is started by whoever owns it.
func (g *Gate) Register(ctx context.Context) error {
	inf, err := g.cache.GetInformer(ctx, namespaceMeta(), cache.BlockUntilSynced(false))
	if err != nil {
		return fmt.Errorf("the Namespace informer: %w", err)
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { g.observe(obj) },
		UpdateFunc: func(_, obj any) { g.observe(obj) },
		DeleteFunc: func(obj any) { g.forget(obj) },
	}); err != nil {
		return err
	}
	g.mu.Lock()
	g.synced = inf.HasSynced
	g.mu.Unlock()
	return nil
}

// Start registers the gate and runs the cache until ctx ends: a
// manager.Runnable that every replica runs (each serves admissions).
// Registering needs the API server's REST mapping: until it answers, it is
// tried again every registerRetry, and the gate answers through its live
// lookups meanwhile.
func (g *Gate) Start(ctx context.Context) error {
	go func() {
		for {
			err := g.Register(ctx)
			if err == nil {
				return
			}
			g.log.Info("cannot watch namespaces yet; the namespace gate asks the API server per namespace meanwhile", "error", err.Error())
			select {
			case <-ctx.Done():
				return
			case <-time.After(registerRetry):
			}
		}
	}()
	return g.cache.Start(ctx)
}

// registerRetry is how often Start tries again to watch namespaces.
const registerRetry = 10 * time.Second

// NeedLeaderElection: every replica gates its own admissions.
func (g *Gate) NeedLeaderElection() bool { return false }

// Synced reports whether the informer has listed every namespace once.
func (g *Gate) Synced() bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.synced()
}

func (g *Gate) observe(obj any) {
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return
	}
	g.mu.Lock()
	g.known[m.Name] = m.Labels[g.label] == g.value
	g.events++
	g.mu.Unlock()
	g.negative.Remove(m.Name)
}

func (g *Gate) forget(obj any) {
	if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return
	}
	g.mu.Lock()
	delete(g.known, m.Name)
	g.events++
	g.mu.Unlock()
}

// OptedIn: the informer's answer when it says opted in, else a negative
// answer cached within NegativeTTL, else a live GET of the namespace's
// metadata within the rate limit (ErrRateLimited past it).
func (g *Gate) OptedIn(ctx context.Context, name string) (bool, error) {
	if len(validation.IsDNS1123Label(name)) > 0 {
		return false, nil // no namespace has such a name: no GET
	}
	g.mu.RLock()
	in, before := g.known[name], g.events
	g.mu.RUnlock()
	if in {
		return true, nil
	}
	if _, ok := g.negative.Get(name); ok {
		return false, nil
	}
	if !g.limiter.Allow() {
		return false, ErrRateLimited
	}
	m := namespaceMeta()
	err := g.reader.Get(ctx, client.ObjectKey{Name: name}, m)
	switch {
	case apierrors.IsNotFound(err):
		g.negative.Add(name, struct{}{})
		return false, nil
	case err != nil && !g.Synced() && transport(err) && ctx.Err() == nil:
		// No answer from the API server, and no view of namespaces yet:
		// the replica cannot tell anything (webhook.NamespaceGate).
		return false, unreachable{fmt.Errorf("looking up namespace %s: %w", name, err)}
	case err != nil:
		return false, fmt.Errorf("looking up namespace %s: %w", name, err)
	case m.Labels[g.label] != g.value:
		g.negative.Add(name, struct{}{})
		return false, nil
	}
	// Kept until the informer says otherwise: the admissions that follow
	// (a Deployment's, then its ReplicaSet's) need no GET. Not kept when
	// the informer spoke meanwhile: its word (a label removed, the
	// namespace deleted while the GET was under way) is newer, and a stale
	// true here would outlive a deleted namespace.
	g.mu.Lock()
	if _, seen := g.known[name]; !seen && g.events == before {
		g.known[name] = true
	}
	g.mu.Unlock()
	return true, nil
}

// transport reports whether err is the API server not answering at all (a
// connection refused or reset, DNS), not an answer or a client-side limit
// (client-go's throttle): only then is a replica with no view of
// namespaces "unreachable".
func transport(err error) bool {
	if apierrors.ReasonForError(err) != metav1.StatusReasonUnknown || apierrors.IsTimeout(err) {
		return false
	}
	var ue *url.Error
	var ne net.Error
	return errors.As(err, &ue) || errors.As(err, &ne)
}

// unreachable is OptedIn's error when the API server did not answer and
// the informer has never listed the namespaces.
type unreachable struct{ error }

func (u unreachable) Unwrap() error { return u.error }

// NamespacesUnreachable marks the error for webhook.NamespaceGate.
func (unreachable) NamespacesUnreachable() bool { return true }
