package registries_test

import (
	"context"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/image-pin/image-pin-webhook/registries"
	"github.com/image-pin/image-pin-webhook/test/registrytest"
)

// pingSource stands in for the config watcher: a Set in force, swapped by
// set, which tells the subscribers as the watcher does.
type pingSource struct {
	mu      sync.Mutex
	current *registries.Set
	subs    []chan struct{}
}

func (s *pingSource) Registries() *registries.Set {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.current
}

func (s *pingSource) Subscribe() (<-chan struct{}, func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := make(chan struct{}, 1)
	s.subs = append(s.subs, ch)
	return ch, func() {}
}

func (s *pingSource) set(set *registries.Set) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.current = set
	for _, ch := range s.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// pingedSet is a Set of one entry with ping: yes for srv.
func pingedSet(t *testing.T, srv *registrytest.Server) *registries.Set {
	t.Helper()
	e := &registries.Entry{Prefix: srv.Host}
	e.Name, e.APIURL, e.Ping = srv.Host, &url.URL{Scheme: "http", Host: srv.Host}, true
	e.SetDefaults()
	if err := e.Validate(); err != nil {
		t.Fatal(err)
	}
	set, err := registries.NewSet([]*registries.Entry{e})
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func TestThePingerPingsTheNewRegistriesAfterAConfigChange(t *testing.T) {
	before, after := registrytest.New(t), registrytest.New(t)
	src := &pingSource{current: pingedSet(t, before)}
	p := &registries.Pinger{Source: src, Interval: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = p.Start(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	waitFor(t, "the ping at start", func() bool { return before.Count("GET", "ping") > 0 })
	src.set(pingedSet(t, after))
	waitFor(t, "a ping of the new registry well before the hourly one", func() bool { return after.Count("GET", "ping") > 0 })
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s", what)
		}
	}
}
