package chart_test

import (
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
)

// The cluster-wide Secret grant for imagepullsecrets is a choice the admin
// makes, never a side effect of a glob in namespaces.
func TestTheClusterWideSecretGrantIsTheAdminsChoice(t *testing.T) {
	wide := []any{map[string]any{"name": "harbor", "api_url": "https://harbor.example", "prefix": "harbor.example",
		"credentials": "imagepullsecrets", "namespaces": []any{"team-*"}}}
	err := renderErr(t, map[string]any{"registries": wide})
	if err == nil || !strings.Contains(err.Error(), "rbac.pullSecrets.clusterWide=true") || !strings.Contains(err.Error(), `"harbor"`) {
		t.Fatalf("%v, want a refusal naming the entry and rbac.pullSecrets.clusterWide", err)
	}
	rel := renderRelease(t, map[string]any{"registries": wide, "rbac": map[string]any{"pullSecrets": map[string]any{"clusterWide": true}}})
	cr := find[*rbacv1.ClusterRole](t, rel.Objects, "image-pin-webhook-imagepullsecrets")
	if len(cr.Rules) != 1 || cr.Rules[0].Verbs[0] != "get" {
		t.Errorf("ClusterRole %+v", cr.Rules)
	}
	if !strings.Contains(rel.Notes, "WARNING: rbac.pullSecrets.clusterWide=true") || !strings.Contains(rel.Notes, `"harbor"`) {
		t.Errorf("notes:\n%s", rel.Notes)
	}
	// Literal namespaces need no choice.
	literal := []any{map[string]any{"name": "harbor", "api_url": "https://harbor.example", "prefix": "harbor.example",
		"credentials": "imagepullsecrets", "namespaces": []any{"team-a"}}}
	rel = renderRelease(t, map[string]any{"registries": literal})
	if n := len(all[*rbacv1.ClusterRole](notGate(rel.Objects))); n != 0 {
		t.Errorf("%d ClusterRoles for literal namespaces", n)
	}
	if strings.Contains(rel.Notes, "WARNING: rbac.pullSecrets") {
		t.Errorf("notes warn without a cluster-wide grant:\n%s", rel.Notes)
	}
}
