package registries_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"

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
	if errs := e.Validate(nil); len(errs) > 0 {
		t.Fatal(errs)
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

// lineLog keeps the messages logged at the default level.
type lineLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *lineLog) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.lines = append(l.lines, args)
	}, funcr.Options{Verbosity: 0})
}

func (l *lineLog) count(msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.lines {
		if strings.Contains(s, `"msg"="`+msg+`"`) {
			n++
		}
	}
	return n
}

func TestAnOperatorSeesARegistryStopAndStartAnsweringOnceEach(t *testing.T) {
	srv := registrytest.New(t)
	down := func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/v2/" {
			return false
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		return true
	}
	srv.SetFault(down)
	set := pingedSet(t, srv)
	src := &pingSource{current: set}
	var logs lineLog
	p := &registries.Pinger{Source: src, Interval: time.Hour, Log: logs.logger()}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = p.Start(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	waitFor(t, "a line for the registry down at start", func() bool { return logs.count("registry stopped answering its ping") == 1 })
	pings := srv.Count("GET", "ping")
	src.set(set) // a reload pings again; still down
	waitFor(t, "a second ping", func() bool { return srv.Count("GET", "ping") > pings })
	srv.SetFault(nil)
	src.set(set)
	waitFor(t, "a line for the registry answering again", func() bool { return logs.count("registry answers its ping again") == 1 })
	if n := logs.count("registry stopped answering its ping"); n != 1 {
		t.Errorf("a registry that stayed down was logged as stopping %d times, want once", n)
	}
}
