package chart_test

import (
	"slices"
	"strings"
	"testing"

	certmanagerv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
)

var withoutCertManager = map[string]any{"certManager": map[string]any{"enabled": false}}

// Without cert-manager the default is the webhook's own certificates: the
// chart renders nothing that changes between renders, so Argo CD and Flux
// see no drift and the CA does not change on every sync.
func TestWithoutCertManagerTheWebhookKeepsItsOwnCertificates(t *testing.T) {
	objs := render(t, withoutCertManager)
	if n := len(all[*certmanagerv1.Certificate](objs)) + len(all[*certmanagerv1.Issuer](objs)); n != 0 {
		t.Errorf("%d cert-manager objects with certManager.enabled=false", n)
	}
	mwc := find[*admissionregistrationv1.MutatingWebhookConfiguration](t, objs, "")
	if len(mwc.Webhooks[0].ClientConfig.CABundle) != 0 || len(mwc.Annotations) != 0 {
		t.Errorf("caBundle %q, annotations %v: the webhook injects the CA itself", mwc.Webhooks[0].ClientConfig.CABundle, mwc.Annotations)
	}
	spec := find[*appsv1.Deployment](t, objs, "").Spec.Template.Spec
	args := spec.Containers[0].Args
	for _, want := range []string{"--cert-secret=image-pin-webhook-tls", "--webhook-config-name=" + mwc.Name,
		"--cert-dns-name=image-pin-webhook." + ns + ".svc", "--cert-dir=/etc/image-pin-webhook/tls"} {
		if !slices.Contains(args, want) {
			t.Errorf("args %q lack %s", args, want)
		}
	}
	// The webhook writes its certificate into --cert-dir: an emptyDir, not the Secret.
	for _, v := range spec.Volumes {
		if v.Name == "tls" && v.EmptyDir == nil {
			t.Errorf("the cert dir is %+v, want an emptyDir", v.VolumeSource)
		}
	}
	for _, m := range spec.Containers[0].VolumeMounts {
		if m.Name == "tls" && m.ReadOnly {
			t.Error("the cert dir is read-only")
		}
	}
	// cert-controller's rotator updates the Secret but does not create it.
	secret := find[*corev1.Secret](t, objs, "image-pin-webhook-tls")
	if len(secret.Data) != 0 || len(secret.StringData) != 0 || secret.Type != corev1.SecretTypeOpaque {
		t.Errorf("the placeholder Secret has type %q and %d keys, want an empty Opaque one", secret.Type, len(secret.Data)+len(secret.StringData))
	}

	role := find[*rbacv1.Role](t, objs, "image-pin-webhook-certs")
	if role.Namespace != ns || len(role.Rules) != 1 || !slices.Equal(role.Rules[0].Resources, []string{"secrets"}) ||
		!slices.Equal(role.Rules[0].Verbs, []string{"get", "list", "watch", "create", "update", "patch"}) {
		t.Errorf("Role %s/%s: %+v", role.Namespace, role.Name, role.Rules)
	}
	cr := find[*rbacv1.ClusterRole](t, objs, "image-pin-webhook-certs")
	var verbs []string
	for _, r := range cr.Rules {
		if !slices.Equal(r.Resources, []string{"mutatingwebhookconfigurations"}) || !slices.Equal(r.APIGroups, []string{"admissionregistration.k8s.io"}) {
			t.Errorf("ClusterRole rule %+v", r)
		}
		for _, v := range r.Verbs {
			if v != "list" && v != "watch" && !slices.Equal(r.ResourceNames, []string{mwc.Name}) {
				t.Errorf("%s is not limited to the webhook's own configuration: %+v", v, r)
			}
		}
		verbs = append(verbs, r.Verbs...)
	}
	slices.Sort(verbs)
	if !slices.Equal(verbs, []string{"get", "list", "patch", "update", "watch"}) {
		t.Errorf("ClusterRole verbs %v", verbs)
	}
	for _, b := range []struct{ kind, name string }{{"RoleBinding", "image-pin-webhook-certs"}, {"ClusterRoleBinding", "image-pin-webhook-certs"}} {
		var subjects []rbacv1.Subject
		var ref rbacv1.RoleRef
		if b.kind == "RoleBinding" {
			rb := find[*rbacv1.RoleBinding](t, objs, b.name)
			subjects, ref = rb.Subjects, rb.RoleRef
		} else {
			crb := find[*rbacv1.ClusterRoleBinding](t, objs, b.name)
			subjects, ref = crb.Subjects, crb.RoleRef
		}
		if len(subjects) != 1 || subjects[0].Name != spec.ServiceAccountName || subjects[0].Namespace != ns || ref.Name != b.name {
			t.Errorf("%s binds %+v to %+v", b.kind, subjects, ref)
		}
	}
}

func TestTwoRendersWithoutCertManagerAreByteIdentical(t *testing.T) {
	for _, values := range []map[string]any{withoutCertManager, seedValuesWithout(t)} {
		first, second := renderRelease(t, values).Manifest, renderRelease(t, values).Manifest
		if first != second {
			t.Errorf("two renders differ:\n%s", firstDifference(first, second))
		}
	}
	helm := map[string]any{"certManager": map[string]any{"enabled": false}, "certificates": map[string]any{"generator": "helm"}}
	if renderRelease(t, helm).Manifest == renderRelease(t, helm).Manifest {
		t.Error("generator helm renders the same CA twice: this test no longer tells the generators apart")
	}
}

func TestWithCertManagerNoRotatorIsStarted(t *testing.T) {
	objs := render(t, nil)
	for _, a := range find[*appsv1.Deployment](t, objs, "").Spec.Template.Spec.Containers[0].Args {
		if a == "--cert-secret=image-pin-webhook-tls" {
			t.Errorf("%s with cert-manager", a)
		}
	}
	for _, r := range all[*rbacv1.ClusterRole](notGate(objs)) {
		t.Errorf("ClusterRole %s with cert-manager", r.Name)
	}
}

func seedValuesWithout(t *testing.T) map[string]any {
	v := seedValues(t)
	v["certManager"] = map[string]any{"enabled": false}
	return v
}

func firstDifference(a, b string) string {
	la, lb := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range min(len(la), len(lb)) {
		if la[i] != lb[i] {
			return "- " + la[i] + "\n+ " + lb[i]
		}
	}
	return "(one is a prefix of the other)"
}
