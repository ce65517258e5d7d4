package state

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/image-pin/image-pin-webhook/api/v1alpha1"
	"github.com/image-pin/image-pin-webhook/config"
	"github.com/image-pin/image-pin-webhook/registries/imageref"
	"github.com/image-pin/image-pin-webhook/resolver"
	"github.com/image-pin/image-pin-webhook/test/registrytest"
)

// The store is tested against a real API server (envtest's kube-apiserver
// and etcd) with the chart's CRD, as the webhook runs it: its informer, its
// optimistic concurrency and its deletes are the API server's.

var apiServer *rest.Config

func TestMain(m *testing.M) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		fmt.Println("state: skipped: these tests need a kube-apiserver and etcd: set KUBEBUILDER_ASSETS (e.g. KUBEBUILDER_ASSETS=$PWD/bin/k8s, see hack/envtest-assets.sh)")
		os.Exit(0)
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "charts", "image-pin-webhook", "crds")},
		ErrorIfCRDPathMissing: true,
	}
	cfg, err := env.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "state: starting envtest:", err)
		os.Exit(1)
	}
	apiServer = cfg
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

func scheme(t testing.TB) *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{v1alpha1.AddToScheme, coordinationv1.AddToScheme, corev1.AddToScheme} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// fixture is one test's state namespace on the shared API server, with a
// registry and a config that points at it.
type fixture struct {
	t      *testing.T
	ns     string
	c      client.Client
	reg    *registrytest.Server
	cfg    *config.Config
	yaml   string // cfg as written
	limits atomic.Pointer[Limits]
}

const fixtureConfig = `registries:
- name: plain
  api_url: %s
  prefix: %s
policy:
  cache_ttl: 10s
  refresh_window: 1h
  record_retention: 168h
`

func newFixture(t *testing.T) *fixture {
	t.Helper()
	c, err := client.New(apiServer, client.Options{Scheme: scheme(t)})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, c: c, ns: fmt.Sprintf("state-%06d", rand.IntN(1_000_000)), reg: registrytest.New(t)}
	if err := c.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: f.ns}}); err != nil {
		t.Fatal(err)
	}
	f.yaml = fmt.Sprintf(fixtureConfig, f.reg.URL, f.reg.Host)
	f.cfg, err = config.Parse([]byte(f.yaml))
	if err != nil {
		t.Fatal(err)
	}
	f.limits.Store(&Limits{RefreshWindow: time.Hour, RecordRetention: 168 * time.Hour, MaxRecordsPerNamespace: 1000, MaxRecords: 20000})
	return f
}

// store starts a Cluster on the fixture's namespace, as one replica's.
func (f *fixture) store(m *Metrics) *Cluster {
	t := f.t
	t.Helper()
	sch := scheme(t)
	informers, err := cache.New(apiServer, cache.Options{
		Scheme: sch, DefaultNamespaces: map[string]cache.Config{f.ns: {}},
		ByObject: map[client.Object]cache.ByObject{
			&coordinationv1.Lease{}: {Field: fields.OneTermEqualSelector("metadata.name", HeartbeatLease)},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	c := NewCluster(Options{Namespace: f.ns, Client: f.c, Reader: f.c, Cache: informers, Metrics: m, Log: logr.Discard(),
		Limits: func() Limits { return *f.limits.Load() }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	for !informers.WaitForCacheSync(ctx) {
		t.Fatal("the informer never synced")
	}
	return c
}

// query is the digest query of repo:tag in ns.
func (f *fixture) query(repo, tag, ns string) resolver.Query {
	f.t.Helper()
	img, err := imageref.ParseImage(f.reg.Host + "/" + repo + ":" + tag)
	if err != nil {
		f.t.Fatal(err)
	}
	q, ok, err := f.cfg.Query(img, ns, config.Steering{}, false)
	if err != nil || !ok {
		f.t.Fatalf("query of %s: %v, %v", repo, ok, err)
	}
	return q.Query
}

func (f *fixture) record(q resolver.Query) (*v1alpha1.ImageResolution, bool) {
	f.t.Helper()
	ir := &v1alpha1.ImageResolution{}
	err := f.c.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: Name(q)}, ir)
	if err != nil {
		return nil, false
	}
	return ir, true
}

func (f *fixture) records() []v1alpha1.ImageResolution {
	f.t.Helper()
	var list v1alpha1.ImageResolutionList
	if err := f.c.List(context.Background(), &list, client.InNamespace(f.ns)); err != nil {
		f.t.Fatal(err)
	}
	return list.Items
}

// eventually waits until cond holds, for at most a minute (a condition,
// not a measure: a slow machine only waits longer).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
	}
}

// seen waits until c's informer holds q's record at its current version.
func (f *fixture) seen(c *Cluster, q resolver.Query) {
	f.t.Helper()
	eventually(f.t, "the informer sees "+Name(q), func() bool {
		ir, ok := f.record(q)
		if !ok {
			return false
		}
		var got v1alpha1.ImageResolution
		err := c.cache.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: ir.Name}, &got)
		return err == nil && got.ResourceVersion == ir.ResourceVersion
	})
}

// age rewrites q's record as if it had been confirmed and used ago.
func (f *fixture) age(q resolver.Query, confirmed, used time.Duration) {
	f.t.Helper()
	ir, ok := f.record(q)
	if !ok {
		f.t.Fatalf("no record of %s", Name(q))
	}
	now := time.Now()
	ir.Status.ConfirmedAt = metav1.Time{Time: now.Add(-confirmed)}
	ir.Status.ResolvedAt = ir.Status.ConfirmedAt
	ir.Status.LastUsed = &metav1.Time{Time: now.Add(-used)}
	if err := f.c.Update(context.Background(), ir); err != nil {
		f.t.Fatal(err)
	}
}

func newMetrics() *Metrics { return NewMetrics(prometheus.NewRegistry()) }
