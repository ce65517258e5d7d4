package chart_test

import (
	"slices"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// gateRBAC is the name of the namespace gate's ClusterRole and binding,
// rendered always.
const gateRBAC = "image-pin-webhook-namespaces"

// notGate is objs without the namespace gate's cluster-wide RBAC, for the
// tests that count what else is granted cluster-wide.
func notGate(objs []client.Object) []client.Object {
	return slices.DeleteFunc(slices.Clone(objs), func(o client.Object) bool {
		switch o.(type) {
		case *rbacv1.ClusterRole, *rbacv1.ClusterRoleBinding:
			return o.GetName() == gateRBAC
		}
		return false
	})
}

func TestTheNamespaceGateMayReadNamespacesMetadataAndNothingElse(t *testing.T) {
	objs := render(t, nil)
	cr := find[*rbacv1.ClusterRole](t, objs, gateRBAC)
	if len(cr.Rules) != 1 || !slices.Equal(cr.Rules[0].Resources, []string{"namespaces"}) ||
		!slices.Equal(cr.Rules[0].Verbs, []string{"get", "list", "watch"}) || len(cr.Rules[0].ResourceNames) != 0 {
		t.Errorf("ClusterRole rules %+v, want get, list, watch on namespaces", cr.Rules)
	}
	crb := find[*rbacv1.ClusterRoleBinding](t, objs, gateRBAC)
	if crb.RoleRef.Name != gateRBAC || len(crb.Subjects) != 1 || crb.Subjects[0].Name != "image-pin-webhook" {
		t.Errorf("ClusterRoleBinding %+v", crb)
	}
}

func TestTheNotesWarnThatForgedReviewsCanNameOptedInNamespacesWithoutClientCAOrNetworkPolicy(t *testing.T) {
	const warning = "can post\na forged AdmissionReview naming any opted-in namespace"
	if n := renderRelease(t, nil).Notes; !strings.Contains(n, warning) {
		t.Errorf("notes without clientCA or networkPolicy:\n%s", n)
	}
	withCA := map[string]any{"clientCA": map[string]any{"secretName": "api-server-ca"}}
	if n := renderRelease(t, withCA).Notes; strings.Contains(n, warning) || !strings.Contains(n, "not behind a NetworkPolicy") {
		t.Errorf("notes with clientCA:\n%s", n)
	}
	if n := renderRelease(t, netpol(true, map[string]any{"cidrs": []any{"172.18.0.0/24"}})).Notes; strings.Contains(n, warning) {
		t.Errorf("notes with networkPolicy.enabled:\n%s", n)
	}
}
