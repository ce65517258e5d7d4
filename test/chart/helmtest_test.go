package chart_test

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// `helm test` runs doctor against the chart's own webhook configuration,
// as its own ServiceAccount, which exists only as a test hook.
func TestHelmTestRunsDoctorAsItsOwnServiceAccount(t *testing.T) {
	rel := renderRelease(t, nil)
	mwc := find[*admissionregistrationv1.MutatingWebhookConfiguration](t, rel.Objects, "")
	for _, h := range rel.Hooks {
		if h.GetAnnotations()["helm.sh/hook"] != "test" {
			t.Errorf("%T %s is a hook but not a test hook", h, h.GetName())
		}
	}
	p := find[*corev1.Pod](t, rel.Hooks, "")
	c := p.Spec.Containers[0]
	if !slices.Equal(c.Args, []string{"doctor", "--webhook-config-name=" + mwc.Name}) {
		t.Errorf("args %q", c.Args)
	}
	if c.Image != "ghcr.io/image-pin/image-pin-webhook:0.1.0" || p.Spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("image %s, restartPolicy %s", c.Image, p.Spec.RestartPolicy)
	}
	sa := find[*corev1.ServiceAccount](t, rel.Hooks, p.Spec.ServiceAccountName)
	if sa.Name == "image-pin-webhook" {
		t.Error("the test runs as the webhook's ServiceAccount")
	}
	// What doctor needs (SHARED-SPEC): list namespaces, create (dry-run) pods,
	// get the webhook configuration, services and endpointslices in the webhook's namespace.
	can := map[string]bool{}
	for _, cr := range all[*rbacv1.ClusterRole](rel.Hooks) {
		for _, r := range cr.Rules {
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					can["cluster "+v+" "+res] = true
				}
			}
		}
	}
	for _, role := range all[*rbacv1.Role](rel.Hooks) {
		for _, r := range role.Rules {
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					can[role.Namespace+" "+v+" "+res] = true
				}
			}
		}
	}
	for _, want := range []string{"cluster list namespaces", "cluster create pods", "cluster get mutatingwebhookconfigurations",
		ns + " get services", ns + " list endpointslices"} {
		if !can[want] {
			t.Errorf("the test's RBAC lacks %q: %v", want, can)
		}
	}
	for _, b := range all[*rbacv1.RoleBinding](rel.Hooks) {
		if b.Subjects[0].Name != sa.Name {
			t.Errorf("RoleBinding %s binds %s", b.Name, b.Subjects[0].Name)
		}
	}
	for _, b := range all[*rbacv1.ClusterRoleBinding](rel.Hooks) {
		if b.Subjects[0].Name != sa.Name || b.Subjects[0].Namespace != ns {
			t.Errorf("ClusterRoleBinding %s binds %+v", b.Name, b.Subjects[0])
		}
	}
	if !strings.Contains(rel.Notes, "helm test image-pin-webhook -n "+ns) {
		t.Errorf("the notes do not say to run helm test:\n%s", rel.Notes)
	}

	// tests.namespace narrows the Pod grant to that namespace.
	rel = renderRelease(t, map[string]any{"tests": map[string]any{"namespace": "team-a"}})
	p = find[*corev1.Pod](t, rel.Hooks, "")
	if !slices.Contains(p.Spec.Containers[0].Args, "--namespace=team-a") {
		t.Errorf("args %q", p.Spec.Containers[0].Args)
	}
	for _, cr := range all[*rbacv1.ClusterRole](rel.Hooks) {
		for _, r := range cr.Rules {
			if slices.Contains(r.Resources, "pods") {
				t.Errorf("with tests.namespace the ClusterRole still grants %v on pods", r.Verbs)
			}
		}
	}
	if !slices.ContainsFunc(all[*rbacv1.Role](rel.Hooks), func(r *rbacv1.Role) bool { return r.Namespace == "team-a" }) {
		t.Error("no Role in team-a")
	}
	if hooks := renderRelease(t, map[string]any{"tests": map[string]any{"enabled": false}}).Hooks; len(hooks) != 0 {
		t.Errorf("%d hooks with tests.enabled=false", len(hooks))
	}
}

// The metric names of interface.md, with the label values alerts may use.
var contractMetrics = []string{"image_pin_admissions_total", "image_pin_resolutions_total", "image_pin_resolve_duration_seconds",
	"image_pin_registry_requests_total", "image_pin_registry_up", "image_pin_cache_entries", "image_pin_config_reloads_total",
	"image_pin_records", "image_pin_refreshes_total", "image_pin_state", "image_pin_build_info"}

var metricName = regexp.MustCompile(`image_pin_[a-z_]+`)

func checkMetrics(t *testing.T, where, expr string) {
	t.Helper()
	names := metricName.FindAllString(expr, -1)
	if len(names) == 0 {
		t.Errorf("%s: %q uses no image_pin_ metric", where, expr)
	}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_sum"), "_count")
		if !slices.Contains(contractMetrics, base) {
			t.Errorf("%s: %s is not a metric of the contract", where, n)
		}
	}
	if strings.Contains(expr, "not_found") {
		t.Errorf("%s: %q looks at not_found, which is an app team's typo, not an outage", where, expr)
	}
}

func unstructuredOf(objs []client.Object, kind string) *unstructured.Unstructured {
	for _, o := range objs {
		if u, ok := o.(*unstructured.Unstructured); ok && u.GetKind() == kind {
			return u
		}
	}
	return nil
}

func TestThePrometheusRuleAlertsOnWhatAnOperatorCanFix(t *testing.T) {
	if unstructuredOf(render(t, nil), "PrometheusRule") != nil {
		t.Error("a PrometheusRule is rendered by default")
	}
	pr := unstructuredOf(render(t, map[string]any{"metrics": map[string]any{"prometheusRule": map[string]any{"enabled": true,
		"labels": map[string]any{"release": "kube-prometheus-stack"}}}}), "PrometheusRule")
	if pr == nil {
		t.Fatal("no PrometheusRule")
	}
	if pr.GetLabels()["release"] != "kube-prometheus-stack" || pr.GetAPIVersion() != "monitoring.coreos.com/v1" {
		t.Errorf("labels %v, apiVersion %s", pr.GetLabels(), pr.GetAPIVersion())
	}
	groups, _, _ := unstructured.NestedSlice(pr.Object, "spec", "groups")
	var alerts []string
	for _, g := range groups {
		rules, _, _ := unstructured.NestedSlice(g.(map[string]any), "rules")
		for _, r := range rules {
			rule := r.(map[string]any)
			name, expr := rule["alert"].(string), rule["expr"].(string)
			alerts = append(alerts, name)
			checkMetrics(t, name, expr)
			if sev, _, _ := unstructured.NestedString(rule, "labels", "severity"); sev == "" {
				t.Errorf("%s has no severity", name)
			}
			if s, _, _ := unstructured.NestedString(rule, "annotations", "summary"); s == "" {
				t.Errorf("%s has no summary", name)
			}
		}
	}
	for _, want := range []string{"ImagePinRegistryDown", "ImagePinRegistryErrors", "ImagePinStaleAnswers", "ImagePinConfigReloadFailed",
		"ImagePinAdmissionErrors", "ImagePinAdmissionsDenied"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("no alert %s among %v", want, alerts)
		}
	}
}

func TestTheGrafanaDashboardIsAConfigMapTheSidecarFinds(t *testing.T) {
	objs := render(t, map[string]any{"metrics": map[string]any{"dashboard": map[string]any{"enabled": true, "namespace": "monitoring"}}})
	cm := find[*corev1.ConfigMap](t, objs, "image-pin-webhook-dashboard")
	if cm.Labels["grafana_dashboard"] != "1" || cm.Namespace != "monitoring" {
		t.Errorf("labels %v, namespace %s", cm.Labels, cm.Namespace)
	}
	var dash struct {
		Title  string
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal([]byte(cm.Data["image-pin-webhook.json"]), &dash); err != nil {
		t.Fatal(err)
	}
	if dash.Title == "" || len(dash.Panels) < 6 {
		t.Errorf("dashboard %q with %d panels", dash.Title, len(dash.Panels))
	}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			checkMetrics(t, p.Title, tg.Expr)
		}
	}
	for _, o := range render(t, nil) {
		if o.GetName() == "image-pin-webhook-dashboard" {
			t.Error("a dashboard is rendered by default")
		}
	}
}
