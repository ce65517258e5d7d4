package envtest

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/image-pin/image-pin-webhook/api/v1alpha1"
	"github.com/image-pin/image-pin-webhook/test/cluster"
)

// optInNamed makes each named namespace exist and carry image-pin.io/enabled=true,
// for the tests whose reviews (posted straight to the admission port) name
// fixed namespaces that registry entries scope to: the webhook's namespace
// gate leaves reviews for any other namespace alone. Tests running side by
// side share the names: one that exists already is labelled, not an error.
func optInNamed(t *testing.T, names ...string) {
	t.Helper()
	c, _ := kube(t)
	for _, name := range names {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"image-pin.io/enabled": "true"}}}
		err := c.Create(ctx(t), ns)
		if apierrors.IsAlreadyExists(err) {
			err = c.Patch(ctx(t), ns, client.RawPatch("application/merge-patch+json", []byte(`{"metadata":{"labels":{"image-pin.io/enabled":"true"}}}`)))
		}
		if err != nil {
			t.Fatalf("opting namespace %s in: %v", name, err)
		}
	}
}

// recordsProcess is a webhook of the test's own on --state cluster, with a
// state namespace of its own, and a client that reads its records.
type recordsProcess struct {
	*process
	stateNS string
	c       client.Client
}

func startRecords(t *testing.T, doc string) *recordsProcess {
	t.Helper()
	installRecordsCRD(t)
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, v1alpha1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	c, err := client.New(s.restCfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	stateNS := fmt.Sprintf("forged-state-%06d", rand.IntN(1_000_000))
	if err := c.Create(ctx(t), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: stateNS}}); err != nil {
		t.Fatal(err)
	}
	p := startProcess(t, doc, cluster.WebhookOptions{Kubeconfig: s.kubecfg, Metrics: true,
		Args: []string{"--state", "cluster", "--state-namespace", stateNS, "--shutdown-delay", "0s"}})
	eventually(t, "the webhook keeps its records in the cluster", func() bool {
		return strings.Contains(p.out.String(), "resolution records are kept in the cluster")
	})
	return &recordsProcess{process: p, stateNS: stateNS, c: c}
}

func (p *recordsProcess) records(t *testing.T) []v1alpha1.ImageResolution {
	t.Helper()
	var list v1alpha1.ImageResolutionList
	if err := p.c.List(ctx(t), &list, client.InNamespace(p.stateNS)); err != nil {
		t.Fatal(err)
	}
	return list.Items
}

func metricValue(t *testing.T, text, line string) float64 {
	t.Helper()
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, line+" ") {
			var v float64
			if _, err := fmt.Sscan(l[len(line)+1:], &v); err == nil {
				return v
			}
		}
	}
	return 0
}

func TestForgedReviewsNamingMadeUpOrNotOptedInNamespacesAreLeftAloneBeforeAnyLookup(t *testing.T) {
	t.Parallel()
	repo := uniq("forged-ns")
	digest := push(t, s.plain, repo+":1")
	p := startRecords(t, fmt.Sprintf("registries:\n- name: plain\n  api_url: http://%[1]s\n  prefix: %[1]s\n", s.plain.Host))
	image := s.plain.Host + "/" + repo + ":1"
	notOptedIn := namespace(t, false)
	for i := range 50 {
		ns := fmt.Sprintf("made-up-%06d", rand.IntN(1_000_000))
		if i%5 == 0 {
			ns = notOptedIn
		}
		r, raw := p.post(t, review(ns, "Pod", "CREATE", image))
		if !r.Allowed || len(r.Patch) != 0 {
			t.Fatalf("a forged review for namespace %s: allowed %v, patch %s, want allowed unchanged: %s", ns, r.Allowed, r.Patch, raw)
		}
		// Past the gate's burst of live lookups (20), a made-up name is
		// not looked up at all: left alone with a warning instead.
		for _, w := range r.Warnings {
			if !strings.Contains(w, "cannot tell whether namespace") {
				t.Fatalf("a forged review for namespace %s got warning %q, want none but the gate's", ns, w)
			}
		}
	}
	text := p.scrape(t)
	if n := sum(series(text, "image_pin_registry_requests_total")); n != 0 {
		t.Fatalf("%v registry requests for 50 forged reviews, want 0", n)
	}
	if n := len(p.records(t)); n != 0 {
		t.Fatalf("%d records written for forged reviews, want 0", n)
	}
	notIn, unverified := metricValue(t, text, `image_pin_namespace_gate_total{result="not_opted_in"}`),
		metricValue(t, text, `image_pin_namespace_gate_total{result="unverified"}`)
	if notIn+unverified != 50 || unverified > 40-10 {
		// 40 made-up names, of which at most 20 (the burst) are looked up
		// live; 10 reviews of one not-opted-in namespace, 1 lookup.
		t.Fatalf("image_pin_namespace_gate_total: not_opted_in %v, unverified %v; want 50 in all, at most 30 unverified", notIn, unverified)
	}
	// The same process pins in a namespace created, labelled and admitted
	// at once: the gate's live lookup covers its informer's delay.
	r, raw := p.post(t, review(namespace(t, true), "Pod", "CREATE", image))
	if !strings.Contains(string(r.Patch), digest) {
		t.Fatalf("a review for a namespace opted in just now was not pinned to %s: %s", digest, raw)
	}
	if n := len(p.records(t)); n != 1 {
		t.Fatalf("%d records after one opted-in review, want 1", n)
	}
}

func TestTheTotalRecordBoundHoldsAcrossNamespaces(t *testing.T) {
	t.Parallel()
	p := startRecords(t, fmt.Sprintf("registries:\n- name: plain\n  api_url: http://%[1]s\n  prefix: %[1]s\npolicy:\n  max_records: 2\n", s.plain.Host))
	for i := range 4 {
		repo := uniq(fmt.Sprintf("total-bound-%d", i))
		digest := push(t, s.plain, repo+":1")
		r, raw := p.post(t, review(namespace(t, true), "Pod", "CREATE", s.plain.Host+"/"+repo+":1"))
		if !strings.Contains(string(r.Patch), digest) {
			t.Fatalf("review %d was not pinned (past the bound, answers are kept in memory, still given): %s", i, raw)
		}
	}
	if n := len(p.records(t)); n != 2 {
		t.Fatalf("%d records from 4 namespaces, want policy.max_records: 2", n)
	}
	text := p.scrape(t)
	if n := metricValue(t, text, `image_pin_record_writes_total{result="memory_only_max_records"}`); n != 2 {
		t.Fatalf(`image_pin_record_writes_total{result="memory_only_max_records"} = %v, want 2`, n)
	}
	if !strings.Contains(p.out.String(), "policy.max_records reached") {
		t.Fatalf("no log line says policy.max_records was reached:\n%s", p.out.String())
	}
}
