package resolver_test

import (
	"bytes"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/image-pin/image-pin-webhook/registries/client"
	"github.com/image-pin/image-pin-webhook/resolver"
	"github.com/image-pin/image-pin-webhook/test/registrytest"
)

// waitingIn counts the goroutines waiting in a select of the function fn
// (its frame as a stack trace prints it): the one state in which a caller
// that joined a shared call shows, since it makes no request.
func waitingIn(fn string) int {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		lines := strings.SplitN(string(g), "\n", 3)
		if len(lines) > 1 && strings.Contains(lines[0], "[select") && strings.Contains(lines[1], fn) {
			n++
		}
	}
	return n
}

func TestLookupsNeedingTheSameDigestsMetadataShareOneRead(t *testing.T) {
	srv := registrytest.New(t)
	srv.PushImage(t, "app:1")
	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	srv.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
			first := false
			once.Do(func() { first = true })
			if first {
				close(held)
				<-release
			}
		}
		return false
	})
	tgt := setup(t, srv, "app", withLimit(100000))
	r := resolver.New()
	// Two policies, so two lookups (not one shared), of two namespaces
	// through one entry's anonymous identity: the same digest's metadata.
	resolve := func(ns, ignore string, out *resolver.Result, errp *error, wg *sync.WaitGroup) {
		defer wg.Done()
		p := resolver.Policy{Strategy: resolver.NewestBuild, CacheTTL: time.Minute, IgnoreTags: []string{ignore}}
		*out, *errp = r.Resolve(client.WithTenant(ctxFor(t, time.Minute), ns), query(tgt, "", p))
	}
	var wg sync.WaitGroup
	var a, b resolver.Result
	var errA, errB error
	wg.Add(2)
	go resolve("a", "x", &a, &errA, &wg)
	<-held
	go resolve("b", "y", &b, &errB, &wg)
	// b either joins a's read (waits in metadata) or asks for the manifest
	// itself: wait for one or the other.
	for waitingIn("resolver.(*Resolver).metadata(") < 2 && srv.Count("GET", "manifest") < 2 {
		runtime.Gosched()
	}
	close(release)
	wg.Wait()
	if errA != nil || errB != nil || a.Tag != "1" || b.Tag != "1" {
		t.Fatalf("got %+v, %v and %+v, %v; want tag 1 for both", a, errA, b, errB)
	}
	if m, c := srv.Count("GET", "manifest"), srv.Count("GET", "blob"); m != 1 || c != 1 {
		t.Errorf("%d manifest and %d config reads, want one of each, shared", m, c)
	}
}

func TestMetadataIsNeverSharedAcrossEntries(t *testing.T) {
	srv := registrytest.New(t)
	srv.PushImage(t, "app:1")
	r := resolver.New()
	p := resolver.Policy{Strategy: resolver.NewestBuild, CacheTTL: time.Minute}
	for _, entry := range []string{"one", "two"} {
		tgt := setup(t, srv, "app", func(e *testEntry) { e.Name = entry })
		if _, err := r.Resolve(ctxFor(t, time.Minute), query(tgt, "", p)); err != nil {
			t.Fatal(err)
		}
	}
	if c := srv.Count("GET", "blob"); c != 2 {
		t.Errorf("%d config reads for two entries, want one each: what one entry's credentials read served the other", c)
	}
}
