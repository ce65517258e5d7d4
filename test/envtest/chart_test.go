package envtest

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/image-pin/image-pin-webhook/test/cluster"
)

// TestTheAPIServerAcceptsWhatTheChartRenders applies every rendered object
// with a server-side dry run, so the API server (with cert-manager's CRDs)
// validates it without the objects taking effect in the shared cluster.
func TestTheAPIServerAcceptsWhatTheChartRenders(t *testing.T) {
	t.Parallel()
	seed := map[string]any{
		"registries": []any{
			map[string]any{"name": "ECR", "api_url": "https://000000000000.dkr.ecr.eu-west-1.amazonaws.com", "prefix": "000000000000.dkr.ecr.eu-west-1.amazonaws.com",
				"ping": true, "insecure": false, "credentials": "ext:/scripts/login.sh", "credsexpire": "10h"},
			map[string]any{"name": "GitHub Container Registry", "api_url": "https://ghcr.io", "prefix": "ghcr.io", "ping": true, "credentials": "secret:argocd/ghcr-secret#token"},
		},
		"authScripts": map[string]any{"enabled": true, "scripts": map[string]any{"login.sh": "#!/bin/sh\necho AWS:x\n"}},
	}
	c, err := client.New(s.restCfg, client.Options{Scheme: cluster.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"chart-check", "argocd"} {
		if err := c.Create(ctx(t), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); client.IgnoreAlreadyExists(err) != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name   string
		values map[string]any
	}{
		{"defaults, with cert-manager", nil},
		{"without cert-manager: the webhook's own certificates", map[string]any{"certManager": map[string]any{"enabled": false}}},
		{"without cert-manager: helm's certificates", map[string]any{"certManager": map[string]any{"enabled": false}, "certificates": map[string]any{"generator": "helm"}}},
		{"a NetworkPolicy naming the API server, clientCA and the pod values", map[string]any{
			"networkPolicy": map[string]any{"enabled": true, "apiServer": map[string]any{"cidrs": []any{"10.0.0.0/8"}}, "podCIDRs": []any{"10.244.0.0/16"}},
			"clientCA":      map[string]any{"secretName": "apiserver-client-ca", "certName": "kube-apiserver"},
			"hostNetwork":   true, "extraArgs": []any{"--shutdown-delay=10s"}, "priorityClassName": "system-cluster-critical",
			"metrics": map[string]any{"dashboard": map[string]any{"enabled": true}}}},
		{"the seed's values", seed},
		{"imagepullsecrets in every namespace", map[string]any{"rbac": map[string]any{"pullSecrets": map[string]any{"clusterWide": true}}, "registries": []any{
			map[string]any{"name": "workloads", "api_url": "https://registry.example", "prefix": "registry.example", "credentials": "imagepullsecrets"}}}},
		{"imagepullsecrets in listed namespaces", map[string]any{"registries": []any{
			map[string]any{"name": "workloads", "api_url": "https://registry.example", "prefix": "registry.example", "credentials": "imagepullsecrets", "namespaces": []any{"chart-check"}}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := cluster.Render("chart-check", "chart-check", tc.values)
			if err != nil {
				t.Fatal(err)
			}
			var kinds []string
			for _, o := range objs {
				kind := o.GetObjectKind().GroupVersionKind().Kind
				kinds = append(kinds, kind)
				if err := c.Create(ctx(t), o, client.DryRunAll); err != nil {
					t.Errorf("%s %s/%s: %v", kind, o.GetNamespace(), o.GetName(), err)
				}
			}
			for _, want := range []string{"Deployment", "MutatingWebhookConfiguration", "ConfigMap", "Service"} {
				if !slices.Contains(kinds, want) {
					t.Errorf("nothing of kind %s rendered", want)
				}
			}
		})
	}
}
