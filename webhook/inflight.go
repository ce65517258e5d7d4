package webhook

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/image-pin/image-pin-webhook/config"
)

// DefaultMaxInFlight is how many admissions that must ask a registry may
// run at once (an admission answered from memory takes no slot). Each may
// hold up to max_lookups (32) lookups, so 64 × 32 is the most the process
// looks up at once; past it, another admission would only queue behind the
// same registries' rate limits until its deadline.
const DefaultMaxInFlight = 64

// inFlight bounds the admissions looking up images at once, and the share
// of them one namespace may hold (a quarter: at least four namespaces are
// served whatever one of them sends), so that one tenant's flood of
// objects naming slow registries cannot make every other tenant's
// admissions wait past their deadline.
type inFlight struct {
	mu    sync.Mutex
	max   int
	share int
	total int
	by    map[string]int
}

func newInFlight(n int) *inFlight {
	n = max(n, 1)
	return &inFlight{max: n, share: max(1, n/4), by: map[string]int{}}
}

// take holds a slot for an admission of namespace ns, or says at once which
// bound it is past: an admission is never queued for a slot, as it could
// wait past its deadline.
// The reason says which (for image_pin_admissions_refused_total).
func (f *inFlight) take(ns string) (release func(), reason string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.by[ns] >= f.share:
		return nil, refusedShare, fmt.Errorf("not looked up: namespace %q has %d admissions in flight already, its share of the webhook's bound of %d admissions in flight", ns, f.by[ns], f.max)
	case f.total >= f.max:
		return nil, refusedBound, fmt.Errorf("not looked up: the webhook has %d admissions in flight already, its bound", f.total)
	}
	f.total++
	f.by[ns]++
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.total--
		if f.by[ns]--; f.by[ns] == 0 {
			delete(f.by, ns) // the map holds only namespaces in flight
		}
	}, "", nil
}

// slot holds an in-flight slot for the plan's namespace when some lookup
// must ask a registry; an admission answered from memory needs none, so
// bursts of warm admissions are never refused. When the namespace or the
// webhook is past its bound, slot refuses the plan and reports false.
func (p *plan) slot(ctx context.Context) (release func(), ok bool) {
	if p.warm(ctx) {
		return func() {}, true
	}
	release, reason, err := p.inFlight.take(p.req.Namespace)
	if err != nil {
		p.metrics.refusal(reason)
		p.refuse(err)
		return nil, false
	}
	return release, true
}

// refuse answers every container that needed a lookup with err, which
// respond turns into the on_error outcome with a warning, as for a failed
// lookup: under ignore, the last known digest stands in (except in a
// restart of an image pinned already, see resolve). A re-apply of a
// recorded pin needs no lookup and stands.
func (p *plan) refuse(err error) {
	p.requestLog().Info("admission not looked up", "namespace", p.req.Namespace, "name", p.req.Name, "reason", err.Error())
	for _, t := range p.tasks {
		switch {
		case t.fixed != "":
			t.out = t.fixed
		case t.err == nil:
			t.err = err
			keep := t.query.Policy.Fresh && strings.Contains(t.c.image, "@")
			if res, ok := p.resolver.LastKnown(t.query.Query); ok && !keep && t.query.OnError == config.OnErrorIgnore {
				t.out = t.img.Repo + ":" + res.Tag + "@" + res.Digest
			}
		}
	}
}
