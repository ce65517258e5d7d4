// Package state keeps the resolver's answers in the cluster: one
// ImageResolution per query in the webhook's namespace, read through an
// informer (never a request per admission for a known record) and written
// with optimistic concurrency, so that every replica pins a query to the
// same digest and the answer outlives the process (--state cluster).
package state

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/image-pin/image-pin-webhook/api/v1alpha1"
	"github.com/image-pin/image-pin-webhook/resolver"
)

// Limits are the policy fields that bound the records, read from the
// config in force at each use.
type Limits struct {
	RefreshWindow          time.Duration
	RecordRetention        time.Duration
	MaxRecordsPerNamespace int
	// MaxRecords bounds the records of every namespace together: each
	// namespace's share alone would let many namespaces (real, or named by
	// forged reviews) grow them without bound.
	MaxRecords int
}

// ErrMemoryOnly is Save's answer for a namespace past its
// max_records_per_namespace, or for any namespace once there are
// max_records: the answer is kept in memory only.
var ErrMemoryOnly = errors.New("the namespace has max_records_per_namespace records, or there are max_records: the answer is kept in memory only")

// fullLogInterval is how often, at most, the store logs that it is past
// max_records.
const fullLogInterval = time.Minute

// writeBackoff is how long a record whose write failed is not written
// again, so that an API server refusing writes (RBAC, quota, the CRD
// gone) is not asked again at every admission.
const writeBackoff = 30 * time.Second

// Cluster is the resolver.Store of --state cluster.
type Cluster struct {
	ns      string
	client  client.Client // writes go straight to the API server
	reader  client.Reader // reads after a lost race, bypassing the informer
	cache   cache.Cache
	limits  func() Limits
	log     logr.Logger
	metrics *Metrics
	touches chan touch
	hashes  hashes

	mu      sync.RWMutex
	recs    map[string]record // by object name, as the informer last saw them
	perNS   map[string]int    // records by the namespace that created them
	failed  map[string]time.Time
	touched map[string]time.Time // when this replica last claimed its window's write of a record, by name
	vouch   vouch                // the leader's last refresh pass, from its heartbeat
	// fullLogged is when the store last logged that it is past max_records,
	// and fullHeld how many such answers were not logged since.
	fullLogged time.Time
	fullHeld   int
}

// record is what Load needs of an ImageResolution, kept apart from the
// informer's objects so that an admission reads a map and copies nothing.
type record struct {
	hash, registry, ns string
	stored             resolver.Stored
	lastUsed           time.Time
	// usedBefore is the lastUsed the record had before its last one: the
	// heartbeat vouches for a record in use whose lastUsed a replica just
	// wrote again (see vouch.covers).
	usedBefore time.Time
}

type touch struct {
	name    string
	version string
}

// Options configure NewCluster.
type Options struct {
	Namespace string
	Client    client.Client
	Reader    client.Reader
	Cache     cache.Cache // restricted to Namespace
	Limits    func() Limits
	Log       logr.Logger
	Metrics   *Metrics
}

// NewCluster makes the store; Start runs its informer.
func NewCluster(o Options) *Cluster {
	return &Cluster{
		ns: o.Namespace, client: o.Client, reader: o.Reader, cache: o.Cache, limits: o.Limits, log: o.Log, metrics: o.Metrics,
		touches: make(chan touch, 1024),
		recs:    map[string]record{}, perNS: map[string]int{}, failed: map[string]time.Time{}, touched: map[string]time.Time{},
	}
}

// Name is the object name of q's record: its query hash, cut to 40 hex
// digits (160 bits). The full hash is in spec.queryHash and checked on read.
func Name(q resolver.Query) string { return nameOf(q.Hash()) }

// NeedLeaderElection: every replica reads the records and writes its
// answers.
func (c *Cluster) NeedLeaderElection() bool { return false }

// Start runs the informer and the lastUsed writer until ctx ends.
func (c *Cluster) Start(ctx context.Context) error {
	inf, err := c.cache.GetInformer(ctx, &v1alpha1.ImageResolution{}, cache.BlockUntilSynced(false))
	if err != nil {
		return fmt.Errorf("the ImageResolution informer: %w", err)
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.observe(obj) },
		UpdateFunc: func(_, obj any) { c.observe(obj) },
		DeleteFunc: func(obj any) { c.forget(obj) },
	}); err != nil {
		return err
	}
	hb, err := c.cache.GetInformer(ctx, &coordinationv1.Lease{}, cache.BlockUntilSynced(false))
	if err != nil {
		return fmt.Errorf("the refresh heartbeat's informer: %w", err)
	}
	if _, err := hb.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.heard(obj) },
		UpdateFunc: func(_, obj any) { c.heard(obj) },
		DeleteFunc: func(any) { c.setVouch(vouch{}) },
	}); err != nil {
		return err
	}
	go c.writeTouches(ctx)
	return c.cache.Start(ctx)
}

func (c *Cluster) observe(obj any) {
	ir, ok := obj.(*v1alpha1.ImageResolution)
	if !ok {
		return
	}
	c.put(ir)
}

func (c *Cluster) put(ir *v1alpha1.ImageResolution) {
	r := record{hash: ir.Spec.QueryHash, registry: ir.Spec.Registry, ns: ir.Spec.Namespace, stored: resolver.Stored{
		Tag: ir.Status.Tag, Digest: ir.Status.Digest, At: ir.Status.ConfirmedAt.Time, Changed: ir.Status.ResolvedAt.Time,
		Version: ir.ResourceVersion,
	}}
	if ir.Status.LastUsed != nil {
		r.lastUsed = ir.Status.LastUsed.Time
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old, had := c.recs[ir.Name]
	if had && old.stored.Version == r.stored.Version {
		return
	}
	if had && !old.lastUsed.Equal(r.lastUsed) {
		r.usedBefore = old.lastUsed
	} else if had {
		r.usedBefore = old.usedBefore
	}
	if had {
		c.perNS[old.ns]--
		c.metrics.records(old.registry, -1)
	}
	c.recs[ir.Name] = r
	c.perNS[r.ns]++
	c.metrics.records(r.registry, 1)
}

func (c *Cluster) forget(obj any) {
	if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	ir, ok := obj.(*v1alpha1.ImageResolution)
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, had := c.recs[ir.Name]; had {
		delete(c.recs, ir.Name)
		delete(c.touched, ir.Name)
		if c.perNS[old.ns]--; c.perNS[old.ns] <= 0 {
			delete(c.perNS, old.ns)
		}
		c.metrics.records(old.registry, -1)
	}
}

// Load is the record of q from the informer's view, when q's entry admits
// ns. A use is noted in the record at most once per refresh window, in
// the background.
func (c *Cluster) Load(ctx context.Context, q resolver.Query, ns string) (resolver.Stored, bool) {
	if e := q.Target.Entry; e != nil && !e.AllowsNamespace(ns) {
		return resolver.Stored{}, false
	}
	hash := c.hashes.of(q)
	name := nameOf(hash)
	c.mu.RLock()
	r, ok := c.recs[name]
	v := c.vouch
	c.mu.RUnlock()
	if !ok || r.hash != hash || r.stored.Digest == "" {
		return resolver.Stored{}, false
	}
	lim := c.limits()
	if !resolver.AdmissionOf(ctx).DryRun { // a dry run writes nothing, lastUsed included
		c.noteUse(name, r, lim)
	}
	st := r.stored
	if !q.Target.UsesPullSecrets() {
		if v.covers(name, r, lim.RefreshWindow) && v.through.After(st.At) {
			// The leader confirmed it since, without writing the record.
			st.At = v.through
		}
	}
	return st, true
}

// usedEvery is how often a use is written into a record's lastUsed.
func usedEvery(l Limits) time.Duration {
	if l.RefreshWindow > 0 {
		return l.RefreshWindow
	}
	return l.RecordRetention / 4
}

// usedSlack is added to the window before a record is written again for
// its use: records keep whole seconds (metav1.Time), and a write lands a
// moment after it is decided, so a window counted from the stored lastUsed
// alone could let two writes fall within one refresh_window.
const usedSlack = 2 * time.Second

// useDue reports whether r is due its window's write: its lastUsed, as the
// informer saw it, whichever replica wrote it, is older than a window. Every
// write of a record that keeps its digest (a lastUsed, a confirmation) sets
// lastUsed, so this alone bounds them to one per record per window, across
// replicas; two replicas deciding at the same instant write from the same
// resourceVersion, and the one that loses the conflict does not try again.
func useDue(r record, every time.Duration, now time.Time) bool {
	return now.Sub(usedAt(r)) >= every+usedSlack
}

// claim takes this replica's write of name for the window, unless it took
// it already (a write in flight, or one the informer has not shown yet).
func (c *Cluster) claim(name string, every time.Duration, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now.Sub(c.touched[name]) < every {
		return false
	}
	c.touched[name] = now
	return true
}

// unclaim gives the window's write of name back: nothing was written.
func (c *Cluster) unclaim(name string) {
	c.mu.Lock()
	delete(c.touched, name)
	c.mu.Unlock()
}

func (c *Cluster) noteUse(name string, r record, lim Limits) {
	every := usedEvery(lim)
	now := time.Now()
	if !useDue(r, every, now) || !c.claim(name, every, now) {
		return
	}
	select {
	case c.touches <- touch{name: name, version: r.stored.Version}:
	default: // a burst of first uses: the next admission notes it
		c.unclaim(name)
	}
}

// writeTouches writes lastUsed, one record at a time, off the admission
// path, from the version the use saw: when the record changed since, or the
// write loses a conflict, another write happened and it is not retried.
func (c *Cluster) writeTouches(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case t := <-c.touches:
			c.mu.RLock()
			r, ok := c.recs[t.name]
			c.mu.RUnlock()
			ir := &v1alpha1.ImageResolution{}
			if !ok || r.stored.Version != t.version ||
				c.cache.Get(ctx, types.NamespacedName{Namespace: c.ns, Name: t.name}, ir) != nil || ir.ResourceVersion != t.version {
				// Written since the use was seen (this replica's own
				// confirmation, a move): the next use looks again.
				c.unclaim(t.name)
				continue
			}
			ir = ir.DeepCopy()
			ir.Status.LastUsed = &metav1.Time{Time: time.Now()}
			c.mu.RLock()
			v := c.vouch
			c.mu.RUnlock()
			if v.covers(t.name, r, c.limits().RefreshWindow) && v.through.After(ir.Status.ConfirmedAt.Time) {
				// The leader confirmed it without writing it (the
				// heartbeat): the window's one write carries that, so
				// that kubectl's Confirmed column follows the refreshes
				// to within a window.
				ir.Status.ConfirmedAt = metav1.Time{Time: v.through}
			}
			err := c.client.Update(ctx, ir)
			switch {
			case err == nil:
				c.metrics.write("used", nil)
				c.put(ir)
			case apierrors.IsConflict(err):
				c.metrics.write("conflict", nil) // another replica wrote first
			case apierrors.IsNotFound(err): // deleted meanwhile
			default:
				c.metrics.write("used", err)
				c.log.Info("cannot note a record's use", "record", t.name, "error", err.Error())
			}
		}
	}
}

// Save stores a new answer: a Create when there was no record (on
// AlreadyExists, another replica was first: its answer is given), an
// Update based on prev's resourceVersion when the digest moved or the
// record is due a confirmation (on Conflict, the current record is given).
func (c *Cluster) Save(ctx context.Context, q resolver.Query, ns string, prev *resolver.Stored, a resolver.Stored) (resolver.Stored, error) {
	hash := c.hashes.of(q)
	name := nameOf(hash)
	lim := c.limits()
	if prev != nil && prev.Digest == a.Digest && prev.Tag == a.Tag && !c.confirmationDue(name, lim) {
		// The same answer again, while the record had its window's write
		// (by any replica) or this replica is writing its use: kept in
		// memory, so that writes stay one per new answer plus one per
		// record per window.
		got := *prev
		got.At = a.At
		return got, nil
	}
	if c.backingOff(name) {
		return a, fmt.Errorf("record %s: a write failed less than %s ago", name, writeBackoff)
	}
	if prev == nil {
		return c.create(ctx, q, ns, hash, a, lim)
	}
	return c.update(ctx, q, ns, hash, prev, a)
}

// confirmationDue reports whether a confirmation of name is to be written,
// and if so takes the window's write for it: the record is due one, and
// this replica has not noted a use of it this window. The confirmation
// then writes lastUsed too.
func (c *Cluster) confirmationDue(name string, lim Limits) bool {
	c.mu.RLock()
	r, ok := c.recs[name]
	c.mu.RUnlock()
	if !ok {
		return true // gone from the informer: update finds out
	}
	every, now := usedEvery(lim), time.Now()
	return useDue(r, every, now) && c.claim(name, every, now)
}

func (c *Cluster) create(ctx context.Context, q resolver.Query, ns, hash string, a resolver.Stored, lim Limits) (resolver.Stored, error) {
	name := nameOf(hash)
	c.mu.RLock()
	n, total := c.perNS[ns], len(c.recs)
	c.mu.RUnlock()
	if n >= lim.MaxRecordsPerNamespace {
		c.metrics.write("memory_only", nil)
		return a, ErrMemoryOnly
	}
	if total >= lim.MaxRecords {
		c.metrics.write("memory_only_max_records", nil)
		c.logFull(total, lim.MaxRecords, ns)
		return a, ErrMemoryOnly
	}
	now := metav1.Now()
	p := q.Policy
	ir := &v1alpha1.ImageResolution{
		ObjectMeta: metav1.ObjectMeta{Namespace: c.ns, Name: name, Labels: map[string]string{"app.kubernetes.io/managed-by": "image-pin-webhook"}},
		Spec: v1alpha1.ImageResolutionSpec{
			Image: q.Image(), Registry: q.Target.Identity.Name, Repository: q.Target.Repository, Tag: q.KeyTag(),
			Strategy: string(p.Strategy), IgnoreTags: p.IgnoreTags, Platforms: p.Platforms, TagSortMode: p.TagSortMode.String(),
			Namespace: ns, QueryHash: hash,
		},
		Status: v1alpha1.ImageResolutionStatus{
			Tag: a.Tag, Digest: a.Digest, ShortDigest: short(a.Digest),
			ResolvedAt: metav1.Time{Time: a.At}, ConfirmedAt: metav1.Time{Time: a.At}, LastUsed: &now,
		},
	}
	if p.Strategy == resolver.Semver && p.Constraint != nil {
		ir.Spec.Constraint = p.Constraint.Text
	}
	if p.AllowTags != nil {
		ir.Spec.AllowTags = p.AllowTags.Text
	}
	err := c.client.Create(ctx, ir)
	switch {
	case err == nil:
		c.metrics.write("created", nil)
		c.put(ir)
		return storedOf(ir), nil
	case apierrors.IsAlreadyExists(err):
		c.metrics.write("conflict", nil)
		return c.current(ctx, hash, a)
	default:
		c.failedWrite(name, "create", err)
		return a, err
	}
}

// logFull logs, at most once per fullLogInterval, that a new answer is
// kept in memory only because there are max_records records.
func (c *Cluster) logFull(total, limit int, ns string) {
	now := time.Now()
	c.mu.Lock()
	if !c.fullLogged.IsZero() && now.Sub(c.fullLogged) < fullLogInterval {
		c.fullHeld++
		c.mu.Unlock()
		return
	}
	held := c.fullHeld
	c.fullLogged, c.fullHeld = now, 0
	c.mu.Unlock()
	c.log.Info("policy.max_records reached: new answers are kept in memory only", "records", total, "max_records", limit,
		"namespace", ns, "suppressed", held)
}

func (c *Cluster) update(ctx context.Context, q resolver.Query, ns, hash string, prev *resolver.Stored, a resolver.Stored) (resolver.Stored, error) {
	name := nameOf(hash)
	ir := &v1alpha1.ImageResolution{}
	if err := c.cache.Get(ctx, types.NamespacedName{Namespace: c.ns, Name: name}, ir); err != nil {
		if apierrors.IsNotFound(err) {
			return c.create(ctx, q, ns, hash, a, c.limits())
		}
		return a, err
	}
	if ir.ResourceVersion != prev.Version {
		// Changed since the lookup began: the newer record is the answer.
		c.metrics.write("conflict", nil)
		return storedOf(ir), nil
	}
	ir = ir.DeepCopy()
	now := metav1.Now()
	st := &ir.Status
	moveTo(st, a.Tag, a.Digest, a.At)
	st.ConfirmedAt = metav1.Time{Time: a.At}
	st.LastUsed = &now
	err := c.client.Update(ctx, ir)
	switch {
	case err == nil:
		c.metrics.write("updated", nil)
		c.put(ir)
		return storedOf(ir), nil
	case apierrors.IsConflict(err):
		c.metrics.write("conflict", nil)
		return c.current(ctx, hash, a)
	default:
		c.failedWrite(name, "update", err)
		return a, err
	}
}

// current reads the record another replica wrote first, from the API
// server: the informer may not have seen it yet.
func (c *Cluster) current(ctx context.Context, hash string, a resolver.Stored) (resolver.Stored, error) {
	name := nameOf(hash)
	ir := &v1alpha1.ImageResolution{}
	if err := c.reader.Get(ctx, types.NamespacedName{Namespace: c.ns, Name: name}, ir); err != nil {
		return a, fmt.Errorf("reading record %s after a concurrent write: %w", name, err)
	}
	if ir.Spec.QueryHash != hash || ir.Status.Digest == "" {
		return a, fmt.Errorf("record %s holds another query", name)
	}
	c.put(ir)
	return storedOf(ir), nil
}

func (c *Cluster) backingOff(name string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	at, ok := c.failed[name]
	return ok && time.Since(at) < writeBackoff
}

func (c *Cluster) failedWrite(name, op string, err error) {
	c.metrics.write("error", err)
	c.mu.Lock()
	c.failed[name] = time.Now()
	for n, at := range c.failed { // bounded by the records failing within writeBackoff
		if time.Since(at) >= writeBackoff {
			delete(c.failed, n)
		}
	}
	c.mu.Unlock()
	c.log.Info("cannot store a resolution record; the answer is kept in memory", "record", name, "operation", op, "error", err.Error())
}

// moveTo makes st give tag and digest from at on, keeping what it gave
// before in its history (newest first, the last v1alpha1.MaxHistory); it
// reports whether the answer changed.
func moveTo(st *v1alpha1.ImageResolutionStatus, tag, digest string, at time.Time) bool {
	if st.Digest == digest && st.Tag == tag {
		return false
	}
	if st.Digest != "" {
		h := append([]v1alpha1.HistoryEntry{{Tag: st.Tag, Digest: st.Digest, Seen: st.ResolvedAt, Until: metav1.Time{Time: at}}}, st.History...)
		st.History = h[:min(len(h), v1alpha1.MaxHistory)]
	}
	st.Tag, st.Digest, st.ShortDigest, st.ResolvedAt = tag, digest, short(digest), metav1.Time{Time: at}
	return true
}

func storedOf(ir *v1alpha1.ImageResolution) resolver.Stored {
	return resolver.Stored{Tag: ir.Status.Tag, Digest: ir.Status.Digest, At: ir.Status.ConfirmedAt.Time,
		Changed: ir.Status.ResolvedAt.Time, Version: ir.ResourceVersion}
}

// short is a digest's first 12 hex digits, as docker prints image IDs.
func short(d string) string {
	_, hex, ok := strings.Cut(d, ":")
	if !ok || len(hex) < 12 {
		return d
	}
	return hex[:12]
}
