package credentials_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/image-pin/image-pin-webhook/registries/credentials"
)

// TestNamesAnObjectWritesNeverMakeTheWebhookReadOutsideItsNamespace drives
// the real controller-runtime client (as the webhook's API reader is) at a
// server that records every path asked: whatever Secret or ServiceAccount
// names a tenant writes, no request leaves the tenant's namespace.
func TestNamesAnObjectWritesNeverMakeTheWebhookReadOutsideItsNamespace(t *testing.T) {
	var (
		mu    sync.Mutex
		paths []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.EscapedPath())
		mu.Unlock()
		http.Error(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}`, http.StatusNotFound)
	}))
	defer srv.Close()
	mapper := meta.NewDefaultRESTMapper(nil)
	mapper.Add(corev1.SchemeGroupVersion.WithKind("Secret"), meta.RESTScopeNamespace)
	mapper.Add(corev1.SchemeGroupVersion.WithKind("ServiceAccount"), meta.RESTScopeNamespace)
	reader, err := client.New(&rest.Config{Host: srv.URL}, client.Options{Mapper: mapper})
	if err != nil {
		t.Fatal(err)
	}
	c := credentials.New(credentials.WithSecretReader(reader))
	hostile := []string{
		"../../team-a/secrets/regcred", "..", ".", "team-a/regcred", "%2e%2e%2fteam-a", "regcred?namespace=team-a",
		"regcred#x", "a\x00b",
	}
	for _, n := range hostile {
		for _, w := range []credentials.Workload{
			{Namespace: "team-b", PullSecrets: []string{n}},
			{Namespace: "team-b", ServiceAccount: n},
		} {
			_, err := c.ReadPullSecrets(ctx(t), w)
			if err == nil {
				t.Errorf("%+v: no error", w)
			}
		}
	}
	// A review that names no namespace (forged: every admitted kind is
	// namespaced) must not become a cluster-wide read.
	if _, err := c.ReadPullSecrets(ctx(t), credentials.Workload{PullSecrets: []string{"regcred"}}); err == nil {
		t.Error("a workload without a namespace: no error")
	}
	mu.Lock()
	defer mu.Unlock()
	for _, p := range paths {
		if !strings.HasPrefix(p, "/api/v1/namespaces/team-b/") {
			t.Errorf("the webhook asked the API server for %s", p)
		}
	}
}
