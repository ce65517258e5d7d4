package chart_test

import (
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/image-pin/image-pin-webhook/test/cluster"
)

// imagepullsecrets needs get on the Secrets and ServiceAccounts of every
// namespace its entries admit: cluster-wide unless each entry lists literal
// namespaces (and then only with rbac.pullSecrets.clusterWide, which the
// admin sets), and nothing at all when no entry uses it.
func TestRBACForImagePullSecretsFollowsTheNamespacesItsEntriesAdmit(t *testing.T) {
	entry := func(name string, namespaces ...any) map[string]any {
		e := map[string]any{"name": name, "api_url": "https://" + name + ".example", "prefix": name + ".example", "credentials": "imagepullsecrets"}
		if len(namespaces) > 0 {
			e["namespaces"] = namespaces
		}
		return e
	}
	tests := []struct {
		name        string
		registries  []any
		clusterWide bool
		namespaces  []string
	}{
		{"an entry for every namespace", []any{entry("a")}, true, nil},
		{"entries listing their namespaces", []any{entry("a", "team-a", "team-b"), entry("b", "team-b", "team-c")}, false, []string{"team-a", "team-b", "team-c"}},
		{"a glob among them", []any{entry("a", "team-a"), entry("b", "team-*")}, true, nil},
		{"one entry without namespaces among them", []any{entry("a", "team-a"), entry("b")}, true, nil},
		{"no entry using it", []any{map[string]any{"name": "x", "api_url": "https://x.io", "prefix": "x.io"}}, false, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// state memory: the records' Role (TestTheRecordsRoleIsTheWebhooksAloneInItsNamespace) is not this test's.
			objs := notGate(render(t, map[string]any{"state": "memory", "registries": tc.registries, "rbac": map[string]any{"pullSecrets": map[string]any{"clusterWide": tc.clusterWide}}}))
			var rules []rbacv1.PolicyRule
			var namespaces []string
			for _, r := range all[*rbacv1.ClusterRole](objs) {
				rules = append(rules, r.Rules...)
			}
			for _, r := range notState(all[*rbacv1.Role](objs)) {
				namespaces = append(namespaces, r.Namespace)
				rules = append(rules, r.Rules...)
			}
			if got := len(all[*rbacv1.ClusterRole](objs)) == 1 && len(all[*rbacv1.ClusterRoleBinding](objs)) == 1; got != tc.clusterWide {
				t.Errorf("cluster-wide: %v, want %v", got, tc.clusterWide)
			}
			slices.Sort(namespaces)
			if !slices.Equal(namespaces, tc.namespaces) {
				t.Errorf("Roles in %v, want %v", namespaces, tc.namespaces)
			}
			if bindings := notState(all[*rbacv1.RoleBinding](objs)); len(bindings) != len(tc.namespaces) {
				t.Errorf("%d RoleBindings, want %d", len(bindings), len(tc.namespaces))
			}
			for _, r := range rules {
				if !slices.Equal(r.Verbs, []string{"get"}) || !slices.Equal(r.Resources, []string{"secrets", "serviceaccounts"}) || len(r.ResourceNames) != 0 {
					t.Errorf("rule %+v, want get on secrets and serviceaccounts", r)
				}
			}
			for _, b := range all[*rbacv1.ClusterRoleBinding](objs) {
				if len(b.Subjects) != 1 || b.Subjects[0].Name != "image-pin-webhook" || b.Subjects[0].Namespace != ns {
					t.Errorf("%s binds %+v", b.Name, b.Subjects)
				}
			}
		})
	}
}

// helm's notes say plainly what imagepullsecrets lets the webhook read.
func TestTheNotesSayWhatTheImagePullSecretsGrantMeans(t *testing.T) {
	notes := func(registries []any) string {
		t.Helper()
		ch, err := loader.Load(cluster.ChartDir())
		if err != nil {
			t.Fatal(err)
		}
		inst := action.NewInstall(&action.Configuration{})
		inst.ClientOnly, inst.DryRun, inst.ReleaseName, inst.Namespace = true, true, "image-pin-webhook", ns
		inst.KubeVersion = &chartutil.KubeVersion{Version: "v1.37.2", Major: "1", Minor: "37"}
		rel, err := inst.Run(ch, map[string]any{"registries": registries, "rbac": map[string]any{"pullSecrets": map[string]any{"clusterWide": true}}})
		if err != nil {
			t.Fatal(err)
		}
		return rel.Info.Notes
	}
	entry := map[string]any{"name": "w", "api_url": "https://r.example", "prefix": "r.example", "credentials": "imagepullsecrets"}
	if n := notes([]any{entry}); !strings.Contains(n, "every Secret and ServiceAccount") || !strings.Contains(n, "in every namespace of the cluster") ||
		!strings.Contains(n, "WARNING: rbac.pullSecrets.clusterWide=true") {
		t.Errorf("cluster-wide notes:\n%s", n)
	}
	entry["namespaces"] = []any{"team-a", "team-b"}
	if n := notes([]any{entry}); !strings.Contains(n, "in the namespaces team-a, team-b.") {
		t.Errorf("per-namespace notes:\n%s", n)
	}
	if n := notes([]any{map[string]any{"name": "x", "api_url": "https://x.io", "prefix": "x.io"}}); strings.Contains(n, "imagepullsecrets") {
		t.Errorf("notes mention imagepullsecrets when no entry uses it:\n%s", n)
	}
}
