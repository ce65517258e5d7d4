package state

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/image-pin/image-pin-webhook/api/v1alpha1"
	"github.com/image-pin/image-pin-webhook/config"
	"github.com/image-pin/image-pin-webhook/resolver"
)

// Refreshing is what the refresher needs of the resolver.
type Refreshing interface {
	Refresh(ctx context.Context, q resolver.Query, ns string, save func(context.Context, resolver.Stored) (resolver.Stored, error)) (resolver.Stored, error)
}

// Refresher is the leader's work on the records: each pass re-resolves
// the records in use before they are cache_ttl old (refresh ahead), writes
// the heartbeat, and deletes the records unused for record_retention.
type Refresher struct {
	store    *Cluster
	resolver Refreshing
	config   func() *config.Config
	events   events.EventRecorder
	log      logr.Logger
	identity string

	mu        sync.Mutex
	confirmed map[string]time.Time     // by record: when a refresh last confirmed it
	took      map[string]time.Duration // by record: how long its last refresh took
	skipped   map[string]string        // by record: the version last counted as skipped
	logged    map[string]time.Time     // by record: when its last refresh error was logged
	failed    map[string]time.Time     // by record: when its last refresh failed
}

// RefresherOptions configure NewRefresher.
type RefresherOptions struct {
	Store    *Cluster
	Resolver Refreshing
	Config   func() *config.Config
	Events   events.EventRecorder // TagMoved; nil records none
	Log      logr.Logger
	Identity string // the heartbeat's holder: this replica
}

// NewRefresher makes the refresher; the manager runs it on the leader.
func NewRefresher(o RefresherOptions) *Refresher {
	return &Refresher{store: o.Store, resolver: o.Resolver, config: o.Config, events: o.Events, log: o.Log, identity: o.Identity,
		confirmed: map[string]time.Time{}, took: map[string]time.Duration{}, skipped: map[string]string{}, logged: map[string]time.Time{},
		failed: map[string]time.Time{}}
}

// NeedLeaderElection: one replica refreshes and deletes, the leader.
func (r *Refresher) NeedLeaderElection() bool { return true }

// Bounds of a pass.
const (
	// refreshWorkers is how many refreshes run at once: each waits for the
	// tokens admissions leave, so more would only queue.
	refreshWorkers = 4
	// errorLogEvery is how often a record's failing refresh is logged.
	errorLogEvery = time.Minute
	minPeriod     = 500 * time.Millisecond
	maxPeriod     = time.Minute
)

// period is the time between passes: a tenth of cache_ttl, so a record is
// looked at ten times in its life, within [minPeriod, maxPeriod].
func period(p config.Policy) time.Duration {
	return min(max(p.CacheTTL/10, minPeriod), maxPeriod)
}

// retryAfter is how long a record whose refresh failed is not refreshed
// again: three passes, so that a registry that is down is not asked once a
// pass for every record it holds.
func retryAfter(p config.Policy) time.Duration { return 3 * period(p) }

// Start runs a pass every period until ctx ends (leadership lost, or the
// process stopping).
func (r *Refresher) Start(ctx context.Context) error {
	r.log.Info("leading: refreshing the records in use ahead of cache_ttl, and deleting those unused for record_retention")
	for {
		r.Pass(ctx)
		t := time.NewTimer(period(r.config().Policy))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// lead is how long before cache_ttl a record is refreshed: a fifth of it,
// or more when its last refresh took long (a slow registry, or admissions
// taking the tokens), so that it ends before the answer expires.
func (r *Refresher) lead(name string, p config.Policy) time.Duration {
	r.mu.Lock()
	took, ok := r.took[name]
	r.mu.Unlock()
	if !ok {
		took = p.CacheTTL / 8
	}
	return min(max(p.CacheTTL/5, period(p)+2*took), p.CacheTTL/2)
}

// Pass looks at every record once: deletes it past record_retention, else
// refreshes it if it is in use and due, then writes the heartbeat.
func (r *Refresher) Pass(ctx context.Context) {
	cfg := r.config()
	p := cfg.Policy
	lim := Limits{RefreshWindow: p.RefreshWindow, RecordRetention: p.RecordRetention, MaxRecordsPerNamespace: p.MaxRecordsPerNamespace, MaxRecords: p.MaxRecords}
	start := time.Now()
	var list v1alpha1.ImageResolutionList
	if err := r.store.cache.List(ctx, &list, client.InNamespace(r.store.ns), client.UnsafeDisableDeepCopy); err != nil {
		if ctx.Err() == nil {
			r.log.Info("cannot list the resolution records", "error", err.Error())
		}
		return
	}
	refresh := p.RefreshWindow > 0 && p.CacheTTL > 0
	through := start
	var due []*v1alpha1.ImageResolution
	var held []string // failed a pass ago: not confirmed, not asked again yet
	seen := make(map[string]bool, len(list.Items))
	for i := range list.Items {
		ir := &list.Items[i]
		seen[ir.Name] = true
		if r.store.retire(ctx, ir, lim, start) || !refresh || ir.Status.Digest == "" {
			continue
		}
		if start.Sub(usedOf(ir)) >= 2*p.RefreshWindow {
			continue // not in use: lastUsed is written once a window
		}
		conf := r.confirmation(ir)
		if start.Sub(conf) >= p.CacheTTL-r.lead(ir.Name, p) {
			if r.backingOff(ir.Name, start, p) {
				held = append(held, ir.Name)
				continue
			}
			due = append(due, ir)
		} else if conf.Before(through) {
			through = conf
		}
	}
	r.forgetGone(seen)
	if !refresh {
		return
	}
	not, oldest := r.refreshAll(ctx, cfg, due)
	not = append(not, held...)
	if !oldest.IsZero() && oldest.Before(through) {
		through = oldest
	}
	if ctx.Err() != nil {
		return
	}
	if err := r.store.beat(ctx, r.identity, start, through, not); err != nil && ctx.Err() == nil {
		r.log.Info("cannot write the refresh heartbeat; the other replicas look the records in use up themselves once cache_ttl old", "lease", HeartbeatLease, "error", err.Error())
	}
}

// confirmation is when ir's answer was last confirmed: by a refresh of this
// leader, else as the record says.
func (r *Refresher) confirmation(ir *v1alpha1.ImageResolution) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	if at, ok := r.confirmed[ir.Name]; ok && at.After(ir.Status.ConfirmedAt.Time) {
		return at
	}
	return ir.Status.ConfirmedAt.Time
}

func (r *Refresher) backingOff(name string, now time.Time, p config.Policy) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	at, ok := r.failed[name]
	return ok && now.Sub(at) < retryAfter(p)
}

func (r *Refresher) forgetGone(seen map[string]bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range []map[string]time.Time{r.confirmed, r.logged, r.failed} {
		for n := range m {
			if !seen[n] {
				delete(m, n)
			}
		}
	}
	for n := range r.took {
		if !seen[n] {
			delete(r.took, n)
		}
	}
	for n := range r.skipped {
		if !seen[n] {
			delete(r.skipped, n)
		}
	}
}

// refreshAll refreshes due, refreshWorkers at a time. It returns the
// records it could not confirm (except those of imagepullsecrets entries,
// which every replica knows not to be refreshed) and the oldest
// confirmation among the others.
func (r *Refresher) refreshAll(ctx context.Context, cfg *config.Config, due []*v1alpha1.ImageResolution) ([]string, time.Time) {
	var (
		mu     sync.Mutex
		not    []string
		oldest time.Time
		wg     sync.WaitGroup
	)
	next := make(chan *v1alpha1.ImageResolution)
	for range min(refreshWorkers, len(due)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ir := range next {
				at, err := r.refresh(ctx, cfg, ir)
				mu.Lock()
				switch {
				case errors.Is(err, errPullSecrets):
				case err != nil:
					not = append(not, ir.Name)
				case oldest.IsZero() || at.Before(oldest):
					oldest = at
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for _, ir := range due {
		select {
		case next <- ir:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	return not, oldest
}

// errSkipped is refresh's answer for a record whose query the config no
// longer makes.
var errSkipped = errors.New("not refreshed")

// refresh re-resolves one record and returns when it was confirmed.
func (r *Refresher) refresh(ctx context.Context, cfg *config.Config, ir *v1alpha1.ImageResolution) (time.Time, error) {
	q, err := Rebuild(cfg, ir.Spec)
	if err == nil && r.store.hashes.of(q) != ir.Spec.QueryHash {
		err = fmt.Errorf("the config in force makes another query of it (an entry, rule or default changed)")
	}
	if err != nil {
		r.skip(ir, err)
		if errors.Is(err, errPullSecrets) {
			return time.Time{}, err
		}
		return time.Time{}, fmt.Errorf("%w: %w", errSkipped, err)
	}
	p := cfg.Policy
	ctx, cancel := context.WithTimeout(ctx, max(p.ResolveTimeout, p.CacheTTL/2))
	defer cancel()
	begin := time.Now()
	var (
		mu      sync.Mutex // save runs in the shared lookup, which may outlive ctx
		saved   bool
		saveErr error
	)
	got, err := r.resolver.Refresh(ctx, q, ir.Spec.Namespace, func(sctx context.Context, a resolver.Stored) (resolver.Stored, error) {
		s, err := r.store.refreshed(sctx, ir.Name, q, a, begin)
		mu.Lock()
		saved, saveErr = true, err
		mu.Unlock()
		return s, err
	})
	mu.Lock()
	if err == nil && saveErr != nil {
		// The registry answered but the record could not be written: it
		// is not confirmed, or the others would be told it was.
		err = fmt.Errorf("storing the refreshed answer: %w", saveErr)
	}
	if err == nil && !saved && (got.Digest != ir.Status.Digest || got.Tag != ir.Status.Tag) {
		// An admission's lookup was joined and stored its own answer:
		// this pass cannot vouch for the record, the next one will.
		mu.Unlock()
		return time.Time{}, fmt.Errorf("%w: an admission re-resolved it meanwhile", errSkipped)
	}
	mu.Unlock()
	reg := ir.Spec.Registry
	if err != nil {
		r.store.metrics.refreshed(reg, "error")
		r.mu.Lock()
		r.failed[ir.Name] = time.Now()
		r.mu.Unlock()
		r.logError(ir, err)
		return time.Time{}, err
	}
	r.mu.Lock()
	r.confirmed[ir.Name] = got.At
	r.took[ir.Name] = time.Since(begin)
	delete(r.logged, ir.Name)
	delete(r.failed, ir.Name)
	r.mu.Unlock()
	if got.Digest == ir.Status.Digest && got.Tag == ir.Status.Tag {
		r.store.metrics.refreshed(reg, "unchanged")
		return got.At, nil
	}
	r.store.metrics.refreshed(reg, "moved")
	r.log.Info("a refresh found the tag moved", "record", ir.Name, "image", ir.Spec.Image, "registry", reg,
		"tag", got.Tag, "from", ir.Status.Digest, "to", got.Digest)
	if r.events != nil {
		r.events.Eventf(ir.DeepCopy(), nil, corev1.EventTypeNormal, "TagMoved", "Refresh",
			"%s moved from %s to %s (tag %s)", ir.Spec.Image, ir.Status.Digest, got.Digest, got.Tag)
	}
	return got.At, nil
}

// skip counts and logs (at V(1)) once per record version a record not
// refreshed because its query cannot be made again.
func (r *Refresher) skip(ir *v1alpha1.ImageResolution, err error) {
	r.mu.Lock()
	again := r.skipped[ir.Name] == ir.ResourceVersion
	r.skipped[ir.Name] = ir.ResourceVersion
	r.mu.Unlock()
	if again {
		return
	}
	r.store.metrics.skipped(ir.Spec.Registry)
	r.log.V(1).Info("a record is not refreshed ahead of use; admissions look it up once it is cache_ttl old",
		"record", ir.Name, "image", ir.Spec.Image, "registry", ir.Spec.Registry, "reason", err.Error())
}

// logError logs a failing refresh at most once per errorLogEvery per record.
func (r *Refresher) logError(ir *v1alpha1.ImageResolution, err error) {
	r.mu.Lock()
	last, ok := r.logged[ir.Name]
	now := time.Now()
	if ok && now.Sub(last) < errorLogEvery {
		r.mu.Unlock()
		return
	}
	r.logged[ir.Name] = now
	r.mu.Unlock()
	r.log.Info("cannot refresh a record ahead of use; it keeps its answer", "record", ir.Name, "image", ir.Spec.Image,
		"registry", ir.Spec.Registry, "error", err.Error())
}

// refreshed stores a refresh's answer a for the record name: nothing when
// the record already gives it (the heartbeat says it was confirmed), an
// update with the previous answer in the history when the tag moved. A
// record resolved anew since the refresh began (a rollout restart) is the
// newer answer and is given instead. lastUsed is left alone: a refresh is
// no use.
func (c *Cluster) refreshed(ctx context.Context, name string, q resolver.Query, a resolver.Stored, since time.Time) (resolver.Stored, error) {
	key := types.NamespacedName{Namespace: c.ns, Name: name}
	var reader client.Reader = c.cache
	for attempt := 0; ; attempt++ {
		ir := &v1alpha1.ImageResolution{}
		if err := reader.Get(ctx, key, ir); err != nil {
			return a, fmt.Errorf("reading record %s: %w", name, err)
		}
		if ir.Spec.QueryHash != c.hashes.of(q) {
			return a, fmt.Errorf("record %s holds another query", name)
		}
		if ir.Status.Digest == a.Digest && ir.Status.Tag == a.Tag {
			return storedOf(ir), nil
		}
		if ir.Status.ResolvedAt.After(since) {
			return storedOf(ir), nil
		}
		ir = ir.DeepCopy()
		now := time.Now()
		moveTo(&ir.Status, a.Tag, a.Digest, now)
		ir.Status.ConfirmedAt = metav1.Time{Time: now}
		err := c.client.Update(ctx, ir)
		switch {
		case err == nil:
			c.metrics.write("updated", nil)
			c.put(ir)
			return storedOf(ir), nil
		case apierrors.IsConflict(err) && attempt < 2:
			// Most likely a replica noting a use: read it again.
			reader = c.reader
			continue
		default:
			c.failedWrite(name, "update", err)
			return a, err
		}
	}
}

// usedOf is when ir was last used, to within a refresh window.
func usedOf(ir *v1alpha1.ImageResolution) time.Time {
	if ir.Status.LastUsed != nil {
		return ir.Status.LastUsed.Time
	}
	return ir.Status.ConfirmedAt.Time
}
