package registries

import (
	"context"
	"time"

	"github.com/go-logr/logr"
)

// PingSource is where a Pinger finds the registries in force and hears that
// they changed: the config watcher.
type PingSource interface {
	// Registries is the Set in force now.
	Registries() *Set
	// Subscribe returns a channel that receives after each change, and a
	// function that ends the subscription.
	Subscribe() (changed <-chan struct{}, cancel func())
}

// Pinger pings every entry with ping: yes in the background, at start, after
// each config change and every Interval, warming credentials and tokens. Its
// outcome is a metric and a log line, never a reason to refuse an admission
// or to fail readiness.
type Pinger struct {
	Source   PingSource
	Interval time.Duration
	Log      logr.Logger
}

// NeedLeaderElection is false: every replica answers admissions, so every
// replica keeps its own credentials and tokens warm.
func (p *Pinger) NeedLeaderElection() bool { return false }

// Start runs until ctx ends; it is a controller-runtime Runnable.
func (p *Pinger) Start(ctx context.Context) error {
	interval := p.Interval
	if interval <= 0 {
		interval = DefaultPingInterval
	}
	// Subscribed before the first ping, so a change while it runs is not missed.
	changed, cancel := p.Source.Subscribe()
	defer cancel()
	t := time.NewTicker(interval)
	defer t.Stop()
	up := map[string]bool{} // by entry name: what its last ping said
	for {
		p.pingAll(ctx, up)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-changed:
		}
	}
}

// pingAll pings each entry and logs, at the default level, each one that
// stops answering (or does not answer its first ping) and each that starts
// answering again; a registry that stays down is logged once, not at every
// interval. up holds the last answer by entry name and is updated.
func (p *Pinger) pingAll(ctx context.Context, up map[string]bool) {
	seen := map[string]bool{}
	for _, m := range p.Source.Registries().byLength {
		if !m.entry.Ping {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, pingTimeout)
		err := m.client.Ping(pctx)
		cancel()
		name := m.entry.Name
		seen[name] = true
		was, known := up[name]
		up[name] = err == nil
		switch {
		case err != nil && (!known || was):
			p.Log.Info("registry stopped answering its ping", "registry", name, "error", err.Error())
		case err != nil:
			p.Log.V(1).Info("registry still not answering its ping", "registry", name, "error", err.Error())
		case known && !was:
			p.Log.Info("registry answers its ping again", "registry", name)
		default:
			p.Log.V(1).Info("registry ping succeeded", "registry", name)
		}
	}
	for name := range up {
		if !seen[name] {
			delete(up, name) // no longer configured (or no longer pinged)
		}
	}
}
