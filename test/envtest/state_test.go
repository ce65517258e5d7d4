package envtest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/image-pin/image-pin-webhook/api/v1alpha1"
	"github.com/image-pin/image-pin-webhook/test/cluster"
)

// Resolution records (--state cluster) on the real API server, with the
// CRD from the chart's crds/ and replicas of the built binary. Each replica
// serves the namespaces labelled image-pin.io/state-replica=<its name>
// through a MutatingWebhookConfiguration of its own, so a test chooses
// which replica admits an object by the namespace it creates it in.

const replicaLabel = "image-pin.io/state-replica"

// stateEnv is one test's records: a state namespace, a registry and a
// config of their own.
type stateEnv struct {
	t        *testing.T
	stateNS  string
	reg      *cluster.Registry
	config   string
	c        client.Client // knows ImageResolution
	replicas []*cluster.Webhook
	outputs  []*lockedBuffer
}

const stateConfig = `registries:
- name: state plain
  api_url: http://{{.Reg}}
  prefix: {{.Reg}}
  on_error: ignore
- name: tenant a
  api_url: http://{{.Token}}
  prefix: {{.Token}}/tenant
  credentials: env:E2E_REGISTRY_CREDS
  namespaces: ["tenant-a-*"]
  on_error: fail
- name: anonymous catch-all
  api_url: http://{{.Token}}
  prefix: {{.Token}}
  on_error: fail
policy:
  cache_ttl: {{.TTL}}
  resolve_timeout: 8s
`

// installRecordsCRD installs the chart's CRD once; the suite's own webhook
// started before it and stays on memory. Tests running side by side call
// it: the first installs, the others wait for it.
func installRecordsCRD(t *testing.T) {
	t.Helper()
	crdOnce.Lock()
	defer crdOnce.Unlock()
	if crdOnce.done {
		return
	}
	_, err := envtest.InstallCRDs(s.restCfg, envtest.CRDInstallOptions{
		Paths: []string{filepath.Join("..", "..", "charts", "image-pin-webhook", "crds", "image-pin.io_imageresolutions.yaml")}, ErrorIfPathMissing: true,
	})
	if err != nil {
		t.Fatalf("installing the chart's CRD: %v", err)
	}
	crdOnce.done = true
}

// crdOnce says whether installRecordsCRD has installed the CRD.
var crdOnce struct {
	sync.Mutex
	done bool
}

func newStateEnv(t *testing.T) *stateEnv {
	t.Helper()
	installRecordsCRD(t)
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(s.restCfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	e := &stateEnv{t: t, c: c, stateNS: fmt.Sprintf("state-%06d", rand.IntN(1_000_000))}
	if err := c.Create(ctx(t), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.stateNS}}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if e.reg, err = cluster.StartRegistry(filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "registry"), filepath.Join(dir, "registry"), cluster.RegistryOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.reg.Stop)
	e.config = e.writeConfig(dir, "config.yaml", "10m")
	return e
}

func (e *stateEnv) writeConfig(dir, name, ttl string) string {
	e.t.Helper()
	var b bytes.Buffer
	template.Must(template.New("config").Parse(stateConfig)).Execute(&b, map[string]string{"Reg": e.reg.Host, "Token": s.tokenReg.Host, "TTL": ttl})
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return path
}

// replica starts a webhook process with --state cluster serving the
// namespaces labelled name, and waits until the API server calls it.
func (e *stateEnv) replica(name, config string) (*cluster.Webhook, *lockedBuffer) {
	t := e.t
	t.Helper()
	certDir := filepath.Join(t.TempDir(), "serving")
	if err := s.authority.Issue(certDir); err != nil {
		t.Fatal(err)
	}
	out := &lockedBuffer{}
	w, err := cluster.StartWebhook(cluster.WebhookOptions{
		Binary: os.Getenv("IMAGE_PIN_WEBHOOK_BIN"), Config: config, CertDir: certDir, Kubeconfig: s.kubecfg, Metrics: true,
		// The namespace gate proves the label this replica's own
		// MutatingWebhookConfiguration selects (below).
		Args: []string{"--state", "cluster", "--state-namespace", e.stateNS, "--shutdown-delay", "0s",
			"--namespace-label", e.replicaKey(name) + "=true"},
		Env:    []string{"POD_NAMESPACE=" + ownNamespace, "E2E_REGISTRY_CREDS=" + regUser + ":" + regPass},
		Output: io.MultiWriter(s.output, out),
	})
	if err != nil {
		t.Fatalf("replica %s: %v; it printed:\n%s", name, err, out.String())
	}
	t.Cleanup(func() { w.Stop(20 * time.Second) })
	// It said so before it was ready, but what it prints reaches out
	// through a pipe, a moment later.
	for deadline := time.Now().Add(60 * time.Second); !strings.Contains(out.String(), "resolution records are kept in the cluster"); time.Sleep(50 * time.Millisecond) {
		if strings.Contains(out.String(), "resolution records are kept in memory only") || time.Now().After(deadline) {
			t.Fatalf("replica %s is not on --state cluster; it printed:\n%s", name, out.String())
		}
	}
	rendered, err := cluster.Render("image-pin-webhook", ownNamespace, nil)
	if err != nil {
		t.Fatal(err)
	}
	mwc, err := cluster.LoopbackWebhook(rendered, w.URL(), s.authority.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	mwc.Name = "state-" + e.stateNS + "-" + name
	for i := range mwc.Webhooks {
		mwc.Webhooks[i].NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{e.replicaKey(name): "true"}}
	}
	// A restarted replica takes over its predecessor's configuration.
	var old admissionregistrationv1.MutatingWebhookConfiguration
	if err := e.c.Get(ctx(t), client.ObjectKeyFromObject(mwc), &old); err == nil {
		mwc.ResourceVersion = old.ResourceVersion
		err = e.c.Update(ctx(t), mwc)
		if err != nil {
			t.Fatal(err)
		}
	} else if err := e.c.Create(ctx(t), mwc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.c.Delete(context.Background(), mwc) })
	e.replicas = append(e.replicas, w)
	e.outputs = append(e.outputs, out)
	return w, out
}

// replicaKey is the label a namespace carries to be served by the replica
// name: the replica's namespaceSelector and its --namespace-label. One key
// per replica, so that one namespace can be opted in to several.
func (e *stateEnv) replicaKey(name string) string {
	return replicaLabel + "-" + e.stateNS + "-" + name
}

// namespace makes a namespace the replicas names serve; prefix lets a
// tenant entry's glob admit it or not.
func (e *stateEnv) namespace(prefix string, names ...string) string {
	e.t.Helper()
	ns := fmt.Sprintf("%s-%06d", prefix, rand.IntN(1_000_000))
	labels := map[string]string{}
	for _, name := range names {
		labels[e.replicaKey(name)] = "true"
	}
	if err := e.c.Create(ctx(e.t), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: labels}}); err != nil {
		e.t.Fatal(err)
	}
	return ns
}

// pod creates a Pod of image in ns (until the API server calls the
// namespace's replica: it reads new configurations with a short delay)
// and returns the image stored, the warnings and the error.
func (e *stateEnv) pod(ns, image string, dryRun bool) (string, string, error) {
	e.t.Helper()
	cfg := rest.CopyConfig(s.restCfg)
	w := &warnings{}
	cfg.WarningHandler = w
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		e.t.Fatal(err)
	}
	var opts []client.CreateOption
	if dryRun {
		opts = append(opts, client.DryRunAll)
	}
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: "p-"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: image}}}}
	err = c.Create(ctx(e.t), p, opts...)
	return p.Spec.Containers[0].Image, w.all(), err
}

// await waits until the API server calls the replica for ns: a dry-run
// Pod of a probe image comes back pinned (a dry run writes no record).
func (e *stateEnv) await(ns string) {
	e.t.Helper()
	probe := e.reg.Host + "/probe:1"
	if _, err := e.reg.Get("probe:1"); err != nil {
		push(e.t, e.reg, "probe:1")
	}
	// The bound only ends a broken run.
	for deadline := time.Now().Add(90 * time.Second); ; {
		got, _, err := e.pod(ns, probe, true)
		if err == nil && strings.Contains(got, "@sha256:") {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("the API server never called the replica for %s: %q, %v", ns, got, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// records are the ImageResolutions of repo (a repository name in the
// registry) in the state namespace, read from the API server.
func (e *stateEnv) records(repo string) []v1alpha1.ImageResolution {
	e.t.Helper()
	var list v1alpha1.ImageResolutionList
	if err := e.c.List(ctx(e.t), &list, client.InNamespace(e.stateNS)); err != nil {
		e.t.Fatal(err)
	}
	var out []v1alpha1.ImageResolution
	for _, r := range list.Items {
		if strings.HasSuffix(r.Spec.Repository, "/"+repo) || r.Spec.Repository == repo {
			out = append(out, r)
		}
	}
	return out
}

// awaitRecords waits until w's informer holds at least n records
// (image_pin_records on its /metrics).
func awaitRecords(t *testing.T, w *cluster.Webhook, n int) {
	t.Helper()
	for deadline := time.Now().Add(90 * time.Second); ; {
		if got := replicaGauge(t, w, "image_pin_records{"); got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the replica's informer never held %d records", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// replicaGauge sums the series of a metric whose line starts with prefix.
func replicaGauge(t *testing.T, w *cluster.Webhook, prefix string) int {
	t.Helper()
	v, err := cluster.MetricSum(w.Metrics, prefix)
	if err != nil {
		t.Fatal(err)
	}
	return int(v)
}

// TestTwoReplicasPinATagToTheDigestTheFirstOneStored is the issue's first
// measurement: replica A pins app:latest, the tag moves in the registry,
// replica B (which never saw the image) pins the digest A pinned, and one
// record holds it.
func TestTwoReplicasPinATagToTheDigestTheFirstOneStored(t *testing.T) {
	t.Parallel()
	e := newStateEnv(t)
	a, _ := e.replica("a", e.config)
	b, _ := e.replica("b", e.config)
	nsA, nsB := e.namespace("state-a", "a"), e.namespace("state-b", "b")
	e.await(nsA)
	e.await(nsB)
	repo := uniq("app")
	first := push(t, e.reg, repo+":latest")
	image := e.reg.Host + "/" + repo + ":latest"
	if got, warn, err := e.pod(nsA, image, false); err != nil || got != image+"@"+first {
		t.Fatalf("replica A stored %q (%v; warnings %s), want %s", got, err, warn, image+"@"+first)
	}
	recs := e.records(repo)
	if len(recs) != 1 || recs[0].Status.Digest != first {
		t.Fatalf("after A's admission the records of %s are %+v, want one with %s", repo, recs, first)
	}
	// What a person sees: the image as asked, the tag and the short digest.
	shown := kubectlOK(t, "get", "imgres", "-n", e.stateNS)
	if !strings.Contains(shown, repo+":latest") || !strings.Contains(shown, strings.TrimPrefix(first, "sha256:")[:12]) {
		t.Errorf("kubectl get imgres shows no %s:latest with %s:\n%s", repo, first, shown)
	}
	moved := push(t, e.reg, repo+":latest")
	if moved == first {
		t.Fatal("the push did not move the tag")
	}
	awaitRecords(t, b, 1)
	if got, warn, err := e.pod(nsB, image, false); err != nil || got != image+"@"+first {
		t.Fatalf("replica B stored %q (%v; warnings %s), want A's %s (the tag moved to %s since)", got, err, warn, first, moved)
	}
	if recs := e.records(repo); len(recs) != 1 || recs[0].Status.Digest != first {
		t.Fatalf("after B's admission the records of %s are %+v, want one with %s", repo, recs, first)
	}
	_ = a // serves nsA; stopped by the cleanup

	// Both resolve a new image at the same instant: one record, one answer.
	race := uniq("race")
	want := push(t, e.reg, race+":latest")
	raced := e.reg.Host + "/" + race + ":latest"
	start := make(chan struct{})
	got := make(chan string, 2)
	for _, ns := range []string{nsA, nsB} {
		go func() {
			<-start
			img, _, err := e.pod(ns, raced, false)
			if err != nil {
				img = err.Error()
			}
			got <- img
		}()
	}
	close(start)
	if g1, g2 := <-got, <-got; g1 != raced+"@"+want || g2 != g1 {
		t.Fatalf("at the same instant the replicas stored %q and %q, want both %s", g1, g2, raced+"@"+want)
	}
	if recs := e.records(race); len(recs) != 1 {
		t.Fatalf("two replicas at once made %d records: %+v", len(recs), recs)
	}
	e.noWriteFailures()
}

// noWriteFailures: no replica logged a failed write of a record.
func (e *stateEnv) noWriteFailures() {
	e.t.Helper()
	for i, out := range e.outputs {
		if strings.Contains(out.String(), "cannot store a resolution record") || strings.Contains(out.String(), "cannot note a record's use") {
			e.t.Errorf("replica %d failed to write a record:\n%s", i, out.String())
		}
	}
}

// TestWithoutTheCRDTheWebhookKeepsAnswersInMemory: the suite's webhook
// started before any test installed the CRD, on the default --state
// cluster: it says so once and serves from memory.
func TestWithoutTheCRDTheWebhookKeepsAnswersInMemory(t *testing.T) {
	t.Parallel()
	// What the suite's webhook printed (its log file in the temporary
	// directory holds the same, but another run on the machine may
	// rewrite it); the state replicas print there too, never this line.
	if n := strings.Count(s.output.String(), "resolution records are kept in memory only"); n != 1 {
		t.Fatalf("the webhook without the CRD logged the fallback %d times, want once", n)
	}
	resp, err := http.Get("http://" + s.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	m, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(m), `image_pin_state{backend="memory"} 1`) {
		t.Fatalf("no image_pin_state{backend=\"memory\"} 1 in:\n%s", m)
	}
}

// TestARolloutRestartUpdatesTheRecordForEveryReplica: after the tag
// moved, a rollout restart through replica A re-resolves and updates the
// record (the old digest in its history), and replica B, which had the old
// digest in memory, then pins the new one.
func TestARolloutRestartUpdatesTheRecordForEveryReplica(t *testing.T) {
	t.Parallel()
	e := newStateEnv(t)
	e.replica("a", e.config)
	e.replica("b", e.config)
	nsA, nsB := e.namespace("state-a", "a"), e.namespace("state-b", "b")
	e.await(nsA)
	e.await(nsB)
	repo := uniq("restart")
	first := push(t, e.reg, repo+":latest")
	image := e.reg.Host + "/" + repo + ":latest"
	d := deploy(nsA, nil, image)
	if err := e.c.Create(ctx(t), d); err != nil {
		t.Fatal(err)
	}
	if got := stored(t, d); got != image+"@"+first {
		t.Fatalf("A stored %q, want %s", got, first)
	}
	if got, _, err := e.pod(nsB, image, false); err != nil || got != image+"@"+first {
		t.Fatalf("B stored %q (%v), want %s", got, err, first)
	}
	moved := push(t, e.reg, repo+":latest")
	rolloutRestart(t, d)
	if got := stored(t, d); got != image+"@"+moved {
		t.Fatalf("after the restart A stored %q, want the moved %s", got, moved)
	}
	recs := e.records(repo)
	if len(recs) != 1 || recs[0].Status.Digest != moved || len(recs[0].Status.History) != 1 || recs[0].Status.History[0].Digest != first {
		t.Fatalf("after the restart the records are %+v, want one with %s and %s in its history", recs, moved, first)
	}
	// B learns of it from its watch: poll with dry runs until it does.
	for deadline := time.Now().Add(90 * time.Second); ; {
		got, _, err := e.pod(nsB, image, true)
		if err == nil && got == image+"@"+moved {
			break
		}
		if time.Now().After(deadline) || (err == nil && got != image+"@"+first) {
			t.Fatalf("B still stores %q (%v), want the record's %s", got, err, moved)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got, _, err := e.pod(nsB, image, false); err != nil || got != image+"@"+moved {
		t.Fatalf("B stored %q (%v), want %s", got, err, moved)
	}
	e.noWriteFailures()
}

// TestADryRunWritesNoRecord: kubectl apply --dry-run=server of a new image
// is mutated as usual and writes nothing; the real admission then does.
func TestADryRunWritesNoRecord(t *testing.T) {
	t.Parallel()
	e := newStateEnv(t)
	e.replica("a", e.config)
	ns := e.namespace("state-dry", "a")
	e.await(ns)
	repo := uniq("dry")
	digest := push(t, e.reg, repo+":1")
	image := e.reg.Host + "/" + repo + ":1"
	if got, warn, err := e.pod(ns, image, true); err != nil || got != image+"@"+digest {
		t.Fatalf("the dry run got %q (%v; warnings %s), want it pinned", got, err, warn)
	}
	if recs := e.records(repo); len(recs) != 0 {
		t.Fatalf("the dry run wrote %d records: %+v", len(recs), recs)
	}
	if got, _, err := e.pod(ns, image, false); err != nil || got != image+"@"+digest {
		t.Fatalf("the admission got %q (%v), want it pinned", got, err)
	}
	if recs := e.records(repo); len(recs) != 1 || recs[0].Status.Digest != digest {
		t.Fatalf("after the admission the records are %+v, want one with %s", recs, digest)
	}
}

// TestAReplicaStartedDuringAnOutagePinsFromTheRecord: both replicas
// stopped, the registry stopped, a fresh replica pins the known image
// from its record, with the on_error warning once the record is older
// than cache_ttl.
func TestAReplicaStartedDuringAnOutagePinsFromTheRecord(t *testing.T) {
	t.Parallel()
	e := newStateEnv(t)
	a, _ := e.replica("a", e.config)
	b, _ := e.replica("b", e.config)
	ns := e.namespace("state-outage", "a")
	e.await(ns)
	repo := uniq("outage")
	digest := push(t, e.reg, repo+":latest")
	image := e.reg.Host + "/" + repo + ":latest"
	if got, _, err := e.pod(ns, image, false); err != nil || got != image+"@"+digest {
		t.Fatalf("before the outage %q (%v), want it pinned", got, err)
	}
	a.Stop(20 * time.Second)
	b.Stop(20 * time.Second)
	e.reg.Stop()
	// cache_ttl: 1s, so the record is stale and the lookup is tried (and fails).
	short := e.writeConfig(t.TempDir(), "short.yaml", "1s")
	for recs := e.records(repo); len(recs) != 1 || time.Since(recs[0].Status.ConfirmedAt.Time) < 2*time.Second; recs = e.records(repo) {
		if len(recs) != 1 {
			t.Fatalf("records of %s: %+v", repo, recs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	fresh, out := e.replica("a", short)
	awaitRecords(t, fresh, 1)
	got, warn, err := e.pod(ns, image, false)
	if err != nil || got != image+"@"+digest {
		t.Fatalf("the fresh replica stored %q (%v; warnings %s), want the record's %s; it printed:\n%s", got, err, warn, digest, out.String())
	}
	if !strings.Contains(warn, repo) {
		t.Errorf("no on_error warning for a pin from a stale record; warnings: %q", warn)
	}
}

// TestARecordOfAScopedEntryNeverServesAnotherNamespace: a record made for
// tenant-a's entry (namespaces: [tenant-a-*]) pins another tenant-a
// namespace on a fresh replica, and never a tenant-b one, which the
// anonymous catch-all denies.
func TestARecordOfAScopedEntryNeverServesAnotherNamespace(t *testing.T) {
	t.Parallel()
	e := newStateEnv(t)
	e.replica("a", e.config)
	b, _ := e.replica("b", e.config)
	a1, a2, other := e.namespace("tenant-a", "a"), e.namespace("tenant-a", "b"), e.namespace("tenant-b", "b")
	e.await(a1)
	e.await(a2)
	e.await(other)
	repo := "tenant/" + uniq("records")
	digest := push(t, s.tokenReg, repo+":1")
	image := s.tokenReg.Host + "/" + repo + ":1"
	if got, warn, err := e.pod(a1, image, false); err != nil || got != image+"@"+digest {
		t.Fatalf("tenant-a on replica A got %q (%v; warnings %s), want it pinned", got, err, warn)
	}
	recs := e.records(repo)
	if len(recs) != 1 || recs[0].Spec.Registry != "tenant a" {
		t.Fatalf("records of %s: %+v, want one of the entry tenant a", repo, recs)
	}
	awaitRecords(t, b, 1)
	got, warn, err := e.pod(other, image, false)
	if err == nil {
		t.Fatalf("tenant-b was admitted with %q (warnings %s)", got, warn)
	}
	if strings.Contains(err.Error(), digest) || strings.Contains(warn, digest) {
		t.Fatalf("tenant-b's denial names tenant-a's digest: %v", err)
	}
	if got, warn, err := e.pod(a2, image, false); err != nil || got != image+"@"+digest {
		t.Fatalf("another tenant-a namespace on replica B got %q (%v; warnings %s), want it pinned", got, err, warn)
	}
	for _, r := range e.records(repo) {
		if r.Spec.Registry != "tenant a" {
			t.Errorf("a record of another entry holds the private image: %+v", r)
		}
	}
}
