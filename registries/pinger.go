package registries

import (
	"context"
	"time"

	"github.com/go-logr/logr"
)

// Pinger pings every entry with ping: yes in the background, at start, after
// each config change and every Interval, warming credentials and tokens. Its
// outcome is a metric and a log line, never a reason to refuse an admission
// or to fail readiness.
type Pinger struct {
	Set      func() *Set
	Interval time.Duration
	Log      logr.Logger
	Changed  <-chan struct{}
}

// Start runs until ctx ends; it is a controller-runtime Runnable.
func (p *Pinger) Start(ctx context.Context) error {
	interval := p.Interval
	if interval <= 0 {
		interval = 5 * time.Minute
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		p.pingAll(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-p.Changed:
		}
	}
}

func (p *Pinger) pingAll(ctx context.Context) {
	for _, m := range p.Set().byLength {
		if !m.entry.Ping {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err := m.client.Ping(pctx)
		cancel()
		if err != nil {
			p.Log.Info("registry ping failed", "registry", m.entry.Name, "error", err.Error())
		} else {
			p.Log.V(1).Info("registry ping succeeded", "registry", m.entry.Name)
		}
	}
}
