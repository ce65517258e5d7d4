package chart_test

import (
	"slices"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
)

// The resolution records are the webhook's alone: a Role (never a
// ClusterRole) in the release namespace, bound to its ServiceAccount, and the
// flags that point the binary at that namespace. --state memory renders none.
func TestTheRecordsRoleIsTheWebhooksAloneInItsNamespace(t *testing.T) {
	tests := []struct {
		name     string
		state    any
		wantRole bool
	}{
		{"the default keeps records in the cluster", nil, true},
		{"state cluster keeps records in the cluster", "cluster", true},
		{"state memory renders no records Role", "memory", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			values := map[string]any{}
			if tc.state != nil {
				values["state"] = tc.state
			}
			objs := render(t, values)
			var found bool
			for _, r := range all[*rbacv1.Role](objs) {
				for _, rule := range r.Rules {
					if slices.Contains(rule.Resources, "imageresolutions") {
						found = true
						if r.Namespace != ns {
							t.Errorf("records Role in namespace %q, want %q", r.Namespace, ns)
						}
					}
				}
			}
			for _, r := range all[*rbacv1.ClusterRole](objs) {
				for _, rule := range r.Rules {
					if slices.Contains(rule.Resources, "imageresolutions") {
						t.Errorf("ClusterRole %s grants imageresolutions", r.Name)
					}
				}
			}
			if found != tc.wantRole {
				t.Errorf("records Role rendered: %v, want %v", found, tc.wantRole)
			}
			want := "--state=cluster"
			if tc.state == "memory" {
				want = "--state=memory"
			}
			args := pod(t, values).Containers[0].Args
			if !slices.Contains(args, want) || !slices.Contains(args, "--state-namespace="+ns) {
				t.Errorf("args %v, want %s and --state-namespace=%s", args, want, ns)
			}
		})
	}
}

func TestTheSchemaRefusesAStateTheBinaryDoesNotKnow(t *testing.T) {
	if err := renderErr(t, map[string]any{"state": "etcd"}); err == nil {
		t.Fatal("state etcd rendered, want the schema to refuse it")
	}
}
