package nsgate

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// The gate is tested against a real API server (envtest's kube-apiserver
// and etcd): its informer and its GETs are the API server's.

var apiServer *rest.Config

func TestMain(m *testing.M) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		fmt.Println("nsgate: skipped: these tests need a kube-apiserver and etcd: set KUBEBUILDER_ASSETS (e.g. KUBEBUILDER_ASSETS=$PWD/bin/k8s)")
		os.Exit(0)
	}
	env := &envtest.Environment{}
	cfg, err := env.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "nsgate: starting envtest:", err)
		os.Exit(1)
	}
	apiServer = cfg
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

// countingReader counts the live GETs.
type countingReader struct {
	client.Reader
	gets atomic.Int64
}

func (r *countingReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	r.gets.Add(1)
	return r.Reader.Get(ctx, key, obj, opts...)
}

type fixture struct {
	c      client.Client
	reader *countingReader
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(apiServer, client.Options{Scheme: s})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{c: c, reader: &countingReader{Reader: c}}
}

// gate makes a gate; with watch, its informer runs until the test ends.
func (f *fixture) gate(t *testing.T, watch bool, lim *rate.Limiter) *Gate {
	t.Helper()
	ch, err := NewCache(apiServer, cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	g := New(Options{Cache: ch, Reader: f.reader, Limiter: lim})
	if !watch {
		return g
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := g.Register(ctx); err != nil {
		t.Fatal(err)
	}
	go func() { _ = ch.Start(ctx) }()
	eventually(t, "the Namespace informer synced", g.Synced)
	return g
}

func (f *fixture) namespace(t *testing.T, optIn bool) string {
	t.Helper()
	name := fmt.Sprintf("ns-%06d", rand.IntN(1_000_000))
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if optIn {
		ns.Labels = map[string]string{Label: Value}
	}
	if err := f.c.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return name
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 30s: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func optedIn(t *testing.T, g *Gate, name string) bool {
	t.Helper()
	ok, err := g.OptedIn(context.Background(), name)
	if err != nil {
		t.Fatalf("OptedIn(%s): %v", name, err)
	}
	return ok
}

func TestANamespaceCreatedAndLabelledThenAdmittedAtOnceIsOptedInBeforeTheInformerSeesIt(t *testing.T) {
	f := newFixture(t)
	g := f.gate(t, false, nil) // no informer events: the live GET alone answers
	ns := f.namespace(t, true)
	if !optedIn(t, g, ns) {
		t.Fatalf("namespace %s, labelled %s=%s just now, is not opted in", ns, Label, Value)
	}
	if n := f.reader.gets.Load(); n != 1 {
		t.Fatalf("%d GETs, want 1", n)
	}
}

func TestTheInformerAnswersKnownNamespacesWithoutARequest(t *testing.T) {
	f := newFixture(t)
	g := f.gate(t, true, nil)
	in, out := f.namespace(t, true), f.namespace(t, false)
	eventually(t, "the informer saw "+in, func() bool { g.mu.RLock(); defer g.mu.RUnlock(); return g.known[in] })
	before := f.reader.gets.Load()
	for range 100 {
		if !optedIn(t, g, in) {
			t.Fatalf("%s is not opted in", in)
		}
	}
	if n := f.reader.gets.Load() - before; n != 0 {
		t.Fatalf("%d GETs for a namespace the informer knows opted in, want 0", n)
	}
	for range 100 {
		if optedIn(t, g, out) {
			t.Fatalf("%s, not labelled, is opted in", out)
		}
	}
	if n := f.reader.gets.Load() - before; n != 1 {
		t.Fatalf("%d GETs for 100 reviews of an unlabelled namespace, want 1 (then the negative cache)", n)
	}
}

func TestLabellingANamespaceClearsItsNegativeAnswer(t *testing.T) {
	f := newFixture(t)
	g := f.gate(t, true, nil)
	ns := f.namespace(t, false)
	if optedIn(t, g, ns) {
		t.Fatalf("%s, not labelled, is opted in", ns)
	}
	var obj corev1.Namespace
	if err := f.c.Get(context.Background(), client.ObjectKey{Name: ns}, &obj); err != nil {
		t.Fatal(err)
	}
	obj.Labels = map[string]string{Label: Value}
	if err := f.c.Update(context.Background(), &obj); err != nil {
		t.Fatal(err)
	}
	eventually(t, ns+" opted in once labelled", func() bool { return optedIn(t, g, ns) })
}

func TestAFloodOfMadeUpNamespacesCostsABoundedNumberOfGets(t *testing.T) {
	f := newFixture(t)
	// A limiter with no refill: exactly its burst of GETs, however long
	// the test runs.
	g := f.gate(t, true, rate.NewLimiter(0, 5))
	limited := 0
	for i := range 500 {
		ok, err := g.OptedIn(context.Background(), fmt.Sprintf("made-up-%d", i))
		switch {
		case ok:
			t.Fatalf("made-up-%d is opted in", i)
		case errors.Is(err, ErrRateLimited):
			limited++
		case err != nil:
			t.Fatal(err)
		}
	}
	if n := f.reader.gets.Load(); n != 5 {
		t.Fatalf("%d GETs for 500 made-up namespaces, want the limiter's 5", n)
	}
	if limited != 495 {
		t.Fatalf("%d answers rate-limited, want 495", limited)
	}
	// Names no namespace can have cost nothing at all.
	for _, bad := range []string{"", "UPPER", "a/b", string(make([]byte, 64))} {
		if ok, err := g.OptedIn(context.Background(), bad); ok || err != nil {
			t.Fatalf("OptedIn(%q) = %v, %v; want false, nil", bad, ok, err)
		}
	}
	if n := f.reader.gets.Load(); n != 5 {
		t.Fatalf("%d GETs after invalid names, want still 5", n)
	}
}

func TestARepeatedMadeUpNameCostsOneGet(t *testing.T) {
	f := newFixture(t)
	g := f.gate(t, false, nil)
	for range 1000 {
		if optedIn(t, g, "made-up-repeated") {
			t.Fatal("a made-up namespace is opted in")
		}
	}
	if n := f.reader.gets.Load(); n != 1 {
		t.Fatalf("%d GETs for one made-up name asked 1000 times, want 1", n)
	}
}

// eventDuringGet answers a GET with an opted-in namespace after the
// informer has, meanwhile, seen it deleted (during, here, by calling the
// gate's delete handler inside the GET); once deleted, GETs find nothing.
type eventDuringGet struct {
	client.Reader
	gate    *Gate
	deleted bool
	gets    int
}

func (r *eventDuringGet) Get(_ context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	r.gets++
	if r.deleted {
		return apierrors.NewNotFound(corev1.Resource("namespaces"), key.Name)
	}
	m := obj.(*metav1.PartialObjectMetadata)
	m.Name, m.Labels = key.Name, map[string]string{Label: Value}
	r.deleted = true
	r.gate.forget(&metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: key.Name}})
	return nil
}

func TestAGetsAnswerIsNotKeptPastAnInformerEventThatCameDuringIt(t *testing.T) {
	r := &eventDuringGet{}
	g := New(Options{Reader: r, Limiter: rate.NewLimiter(rate.Inf, 0)})
	r.gate = g
	if in, err := g.OptedIn(context.Background(), "team-a"); !in || err != nil {
		t.Fatalf("first admission: opted in %v, %v; want true (the GET said so)", in, err)
	}
	in, err := g.OptedIn(context.Background(), "team-a")
	if in || err != nil {
		t.Errorf("after the namespace was deleted during the first GET: opted in %v, %v; want false (the GET's answer outlived the deletion)", in, err)
	}
	if r.gets != 2 {
		t.Errorf("%d GETs, want 2: the stale answer was not kept, so the second admission asked again", r.gets)
	}
}

func TestOnlyAnAPIServerThatDoesNotAnswerMakesAReplicaUnreachable(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"a refused connection is no answer", &url.Error{Op: "Get", URL: "https://10.0.0.1/api", Err: &net.OpError{Op: "dial", Err: errors.New("connection refused")}}, true},
		{"a network error is no answer", &net.OpError{Op: "read", Err: errors.New("connection reset by peer")}, true},
		{"client-go's own throttle is not the API server", errors.New("client rate limiter Wait returned an error: rate: Wait(n=1) would exceed context deadline"), false},
		{"a not-found is an answer", apierrors.NewNotFound(corev1.Resource("namespaces"), "team-a"), false},
		{"a server timeout is an answer", apierrors.NewServerTimeout(corev1.Resource("namespaces"), "get", 1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := transport(tt.err); got != tt.want {
				t.Errorf("transport(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}
