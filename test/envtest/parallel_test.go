package envtest

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// How the tests run side by side. They share the API server, the
// controllers, the suite's webhook with its config, and its four
// registries. A test that works in namespaces of its own (namespace,
// tenantNamespace), in repositories of its own (uniq) and starts whatever
// else it stops (startProcess, newStateEnv, its own registry) shares
// nothing: it calls t.Parallel() first, and waits on conditions, never on
// the others' timing. The rest stay serial (Go runs them first, one at a
// time, before any parallel test) and say why beside their name:
//   - a test that rewrites the suite's config: a reload gives every entry
//     fresh clients, so the others' cached credentials would go;
//   - a test that counts something over the whole suite's webhook (every
//     registry request it made);
//   - a test that installs a webhook configuration for every opted-in
//     namespace (the chart for real);
//   - a test whose subject is latency under load.
// Tests that stop flaky, or answer in its place, hold it (holdFlaky): they
// run one at a time, beside the others.

// holdFlaky makes t the only test that stops or replaces the flaky
// registry until t ends. Call it before anything that stops flaky: the
// registry is started again (by t's later cleanups) before the next test
// gets it.
func holdFlaky(t *testing.T) {
	t.Helper()
	s.flakyMu.Lock()
	t.Cleanup(s.flakyMu.Unlock)
}

// cacheTTL is policy.cache_ttl of the suite's config.
const cacheTTL = time.Second

// waitOutCacheTTL waits until every answer the suite's webhook resolved
// before the call is past cache_ttl, so that the next lookup asks the
// registry again: what the test is about is that time passing.
func waitOutCacheTTL() { time.Sleep(cacheTTL + 100*time.Millisecond) }

// dryRunPod creates a Pod of image in ns as a server-side dry run (which
// stores nothing) and returns the image the admission left in it.
func dryRunPod(t *testing.T, ns, image string) (string, error) {
	t.Helper()
	c, _ := kube(t)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: "probe-"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: image}}}}
	err := c.Create(ctx(t), pod, client.DryRunAll)
	return pod.Spec.Containers[0].Image, err
}

// awaitServed waits until the API server sends ns's admissions to the
// suite's webhook: it learns a namespace's labels through an informer, a
// moment after they change. The probe image is the one waitForWebhook
// pushed.
func awaitServed(t *testing.T, ns string) {
	t.Helper()
	eventually(t, "the API server calls the suite's webhook for namespace "+ns, func() bool {
		got, err := dryRunPod(t, ns, s.plain.Host+"/probe:1")
		return err == nil && strings.Contains(got, "@sha256:")
	})
}
