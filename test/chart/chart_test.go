// Package chart_test checks what charts/image-pin-webhook renders: every
// object decoded strictly into its typed struct, and the invariants the
// contract and the chart's docs promise. test/envtest applies the same
// objects to a real API server.
package chart_test

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"slices"
	"strings"
	"testing"

	certmanagerv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/image-pin/image-pin-webhook/config"
	"github.com/image-pin/image-pin-webhook/test/chart"
	"github.com/image-pin/image-pin-webhook/test/cluster"
)

const ns = "image-pin-system"

func render(t *testing.T, values map[string]any) []client.Object {
	t.Helper()
	return renderRelease(t, values).Objects
}

func renderRelease(t *testing.T, values map[string]any) *chart.Release {
	t.Helper()
	rel, err := chart.Render("image-pin-webhook", ns, values)
	if err != nil {
		t.Fatal(err)
	}
	return rel
}

func seedValues(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile("testdata/seed-values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := yaml.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func find[T client.Object](t *testing.T, objs []client.Object, name string) T {
	t.Helper()
	for _, o := range objs {
		if typed, ok := o.(T); ok && (name == "" || o.GetName() == name) {
			return typed
		}
	}
	var zero T
	t.Fatalf("no %T named %q rendered", zero, name)
	return zero
}

func all[T client.Object](objs []client.Object) []T {
	var out []T
	for _, o := range objs {
		if typed, ok := o.(T); ok {
			out = append(out, typed)
		}
	}
	return out
}

// notState leaves out the Role and RoleBinding of the resolution records
// (templates/state-rbac.yaml), which TestTheRecordsRBACIsARoleInTheReleaseNamespace checks.
func notState[T client.Object](objs []T) []T {
	var out []T
	for _, o := range objs {
		if !strings.HasSuffix(o.GetName(), "-state") {
			out = append(out, o)
		}
	}
	return out
}

func TestTheRecordsRBACIsARoleInTheReleaseNamespace(t *testing.T) {
	objs := render(t, nil)
	var roles []*rbacv1.Role
	for _, r := range all[*rbacv1.Role](objs) {
		if strings.HasSuffix(r.Name, "-state") {
			roles = append(roles, r)
		}
	}
	if len(roles) != 1 || roles[0].Namespace != ns {
		t.Fatalf("records Roles %+v, want one in %s", roles, ns)
	}
	var records bool
	for _, rule := range roles[0].Rules {
		records = records || (slices.Equal(rule.APIGroups, []string{"image-pin.io"}) && slices.Equal(rule.Resources, []string{"imageresolutions"}))
		if slices.Contains(rule.Resources, "secrets") {
			t.Errorf("the records Role grants %+v", rule)
		}
	}
	if !records {
		t.Errorf("the records Role %+v grants nothing on imageresolutions", roles[0].Rules)
	}
	for _, b := range all[*rbacv1.RoleBinding](objs) {
		if b.RoleRef.Name == roles[0].Name && (len(b.Subjects) != 1 || b.Subjects[0].Kind != "ServiceAccount" || b.Subjects[0].Namespace != ns) {
			t.Errorf("%s binds %+v", b.Name, b.Subjects)
		}
	}
}

func TestTheSeedsValuesWorkAsWritten(t *testing.T) {
	objs := render(t, seedValues(t))
	cm := find[*corev1.ConfigMap](t, objs, "image-pin-webhook")
	cfg, err := config.Parse([]byte(cm.Data["config.yaml"]))
	if err != nil {
		t.Fatalf("the rendered config does not load: %v\n%s", err, cm.Data["config.yaml"])
	}
	entries := cfg.Registries.Entries()
	if len(entries) != 2 {
		t.Fatalf("%d registries in the rendered config, want 2", len(entries))
	}
	for _, e := range entries {
		if !e.Ping {
			t.Errorf("%s: ping: yes did not come through as true", e.Name)
		}
	}
	scripts := find[*corev1.ConfigMap](t, objs, "image-pin-webhook-scripts")
	if !strings.Contains(scripts.Data["login.sh"], "aws ecr --region") {
		t.Errorf("login.sh = %q", scripts.Data["login.sh"])
	}
	dep := find[*appsv1.Deployment](t, objs, "")
	var mode int32
	for _, v := range dep.Spec.Template.Spec.Volumes {
		if v.ConfigMap != nil && v.ConfigMap.Name == "image-pin-webhook-scripts" && v.ConfigMap.DefaultMode != nil {
			mode = *v.ConfigMap.DefaultMode
		}
	}
	if mode&0o111 == 0 {
		t.Errorf("the scripts are mounted without the execute bit (mode %o)", mode)
	}
	mounted := false
	for _, m := range dep.Spec.Template.Spec.Containers[0].VolumeMounts {
		mounted = mounted || m.MountPath == "/scripts"
	}
	if !mounted {
		t.Error("the scripts are not mounted at /scripts")
	}
}

func TestRBACIsGetOnExactlyTheNamedSecrets(t *testing.T) {
	values := seedValues(t)
	values["registries"] = append(values["registries"].([]any),
		map[string]any{"name": "hub", "api_url": "https://registry-1.docker.io", "prefix": "docker.io", "credentials": "pullsecret:ci/hub-pull"},
		map[string]any{"name": "quay", "api_url": "https://quay.io", "prefix": "quay.io", "credentials": "secret:argocd/quay#creds"},
		map[string]any{"name": "env", "api_url": "https://x.io", "prefix": "x.io", "credentials": "env:X_CREDS"})
	values["state"] = "memory" // the records' Role is TestTheRecordsRoleIsTheWebhooksAloneInItsNamespace's
	objs := render(t, values)
	if n := len(all[*rbacv1.ClusterRole](notGate(objs))) + len(all[*rbacv1.ClusterRoleBinding](notGate(objs))); n != 0 {
		t.Errorf("%d cluster-wide RBAC objects, want none", n)
	}
	roles := notState(all[*rbacv1.Role](objs))
	want := map[string][]string{"argocd": {"ghcr-secret", "quay"}, "ci": {"hub-pull"}}
	if len(roles) != len(want) {
		t.Fatalf("%d Roles, want %d", len(roles), len(want))
	}
	for _, r := range roles {
		if len(r.Rules) != 1 {
			t.Fatalf("%s/%s has %d rules", r.Namespace, r.Name, len(r.Rules))
		}
		rule := r.Rules[0]
		if !slices.Equal(rule.Verbs, []string{"get"}) || !slices.Equal(rule.Resources, []string{"secrets"}) || !slices.Equal(rule.APIGroups, []string{""}) {
			t.Errorf("%s: rule %+v, want get on secrets only", r.Namespace, rule)
		}
		if !slices.Equal(rule.ResourceNames, want[r.Namespace]) {
			t.Errorf("%s: resourceNames %v, want %v", r.Namespace, rule.ResourceNames, want[r.Namespace])
		}
	}
	for _, b := range all[*rbacv1.RoleBinding](objs) {
		if len(b.Subjects) != 1 || b.Subjects[0].Name != "image-pin-webhook" || b.Subjects[0].Namespace != ns || b.RoleRef.Kind != "Role" {
			t.Errorf("%s/%s binds %+v to %+v", b.Namespace, b.Name, b.Subjects, b.RoleRef)
		}
	}
}

func TestTheWebhookConfigurationFollowsTheContract(t *testing.T) {
	mwc := find[*admissionregistrationv1.MutatingWebhookConfiguration](t, render(t, nil), "")
	if len(mwc.Webhooks) != 1 {
		t.Fatalf("%d webhooks", len(mwc.Webhooks))
	}
	w := mwc.Webhooks[0]
	if *w.FailurePolicy != admissionregistrationv1.Ignore || *w.TimeoutSeconds != 10 || *w.ReinvocationPolicy != admissionregistrationv1.IfNeededReinvocationPolicy ||
		*w.SideEffects != admissionregistrationv1.SideEffectClassNoneOnDryRun || !slices.Equal(w.AdmissionReviewVersions, []string{"v1"}) {
		t.Errorf("webhook settings %+v", w)
	}
	if w.ClientConfig.Service == nil || *w.ClientConfig.Service.Path != "/mutate" {
		t.Errorf("clientConfig %+v", w.ClientConfig)
	}
	if w.NamespaceSelector.MatchLabels["image-pin.io/enabled"] != "true" {
		t.Errorf("namespaceSelector %+v is not opt-in", w.NamespaceSelector)
	}
	excluded := w.NamespaceSelector.MatchExpressions[0]
	if excluded.Key != "kubernetes.io/metadata.name" || excluded.Operator != "NotIn" || !slices.Equal(excluded.Values, []string{ns, "kube-system"}) {
		t.Errorf("namespaceSelector does not exclude its own namespace and kube-system: %+v", excluded)
	}
	if e := w.ObjectSelector.MatchExpressions[0]; e.Key != "image-pin.io/skip" || e.Operator != "NotIn" {
		t.Errorf("objectSelector %+v", w.ObjectSelector)
	}
	var resources []string
	for _, r := range w.Rules {
		if !slices.Equal(r.Operations, []admissionregistrationv1.OperationType{"CREATE", "UPDATE"}) {
			t.Errorf("rule operations %v", r.Operations)
		}
		resources = append(resources, r.Resources...)
	}
	for _, want := range []string{"pods", "pods/ephemeralcontainers", "podtemplates", "replicationcontrollers", "deployments", "statefulsets", "daemonsets", "replicasets", "jobs", "cronjobs"} {
		if !slices.Contains(resources, want) {
			t.Errorf("rules lack %s", want)
		}
	}
	if mwc.Annotations["cert-manager.io/inject-ca-from"] != ns+"/image-pin-webhook-serving" {
		t.Errorf("annotations %v", mwc.Annotations)
	}
	cm := find[*corev1.ConfigMap](t, render(t, nil), "image-pin-webhook")
	cfg, err := config.Parse([]byte(cm.Data["config.yaml"]))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Policy.ResolveTimeout.Seconds() != 8 {
		t.Errorf("resolve_timeout %s, want 8s", cfg.Policy.ResolveTimeout)
	}
}

func TestTheEndToEndSuiteRegistersTheChartsWebhook(t *testing.T) {
	mwc, err := cluster.LoopbackWebhook(render(t, nil), "https://127.0.0.1:1/mutate", nil)
	if err != nil {
		t.Fatal(err)
	}
	if mwc.Webhooks[0].ClientConfig.URL == nil || mwc.Webhooks[0].ClientConfig.Service != nil {
		t.Errorf("clientConfig %+v", mwc.Webhooks[0].ClientConfig)
	}
}

func TestThePodIsHardened(t *testing.T) {
	objs := render(t, map[string]any{"priorityClassName": "system-cluster-critical",
		"extraEnv": []any{map[string]any{"name": "HUB_CREDS", "value": "x"}}})
	dep := find[*appsv1.Deployment](t, objs, "")
	spec := dep.Spec.Template.Spec
	if *dep.Spec.Replicas != 2 {
		t.Errorf("replicas %d, want 2", *dep.Spec.Replicas)
	}
	if psc := spec.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext %+v", spec.SecurityContext)
	}
	c := spec.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("container securityContext %+v", sc)
	}
	if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %+v", c.Resources)
	}
	var home, podNS, extra bool
	for _, e := range c.Env {
		home = home || (e.Name == "HOME" && e.Value == "/tmp")
		podNS = podNS || (e.Name == "POD_NAMESPACE" && e.ValueFrom != nil)
		extra = extra || e.Name == "HUB_CREDS"
	}
	if !home || !podNS || !extra {
		t.Errorf("env %+v lacks HOME=/tmp, POD_NAMESPACE or extraEnv", c.Env)
	}
	tmp := false
	for _, v := range spec.Volumes {
		tmp = tmp || (v.Name == "tmp" && v.EmptyDir != nil)
	}
	if !tmp {
		t.Error("no emptyDir for /tmp")
	}
	if spec.PriorityClassName != "system-cluster-critical" {
		t.Errorf("priorityClassName %q", spec.PriorityClassName)
	}
	if len(spec.TopologySpreadConstraints) == 0 || spec.TopologySpreadConstraints[0].TopologyKey != "kubernetes.io/hostname" {
		t.Errorf("replicas are not spread across nodes: %+v", spec.TopologySpreadConstraints)
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.LivenessProbe == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Error("probes are not /readyz and /healthz")
	}
	find[*policyv1.PodDisruptionBudget](t, objs, "")
}

func TestCertManagerIssuesTheServingCertificateThroughAnOwnCA(t *testing.T) {
	objs := render(t, nil)
	serving := find[*certmanagerv1.Certificate](t, objs, "image-pin-webhook-serving")
	caCert := find[*certmanagerv1.Certificate](t, objs, "image-pin-webhook-ca")
	caIssuer := find[*certmanagerv1.Issuer](t, objs, "image-pin-webhook-ca")
	self := find[*certmanagerv1.Issuer](t, objs, "image-pin-webhook-selfsigned")
	if self.Spec.SelfSigned == nil || caCert.Spec.IssuerRef.Name != self.Name || !caCert.Spec.IsCA {
		t.Error("the CA certificate is not issued by the self-signed Issuer")
	}
	if caIssuer.Spec.CA == nil || caIssuer.Spec.CA.SecretName != caCert.Spec.SecretName {
		t.Error("the CA Issuer does not use the CA certificate")
	}
	if serving.Spec.IssuerRef.Name != caIssuer.Name || !slices.Contains(serving.Spec.DNSNames, "image-pin-webhook."+ns+".svc") {
		t.Errorf("serving certificate %+v", serving.Spec)
	}
	dep := find[*appsv1.Deployment](t, objs, "")
	found := false
	for _, v := range dep.Spec.Template.Spec.Volumes {
		found = found || (v.Secret != nil && v.Secret.SecretName == serving.Spec.SecretName)
	}
	if !found {
		t.Error("the Deployment does not mount the serving certificate's Secret")
	}
}

func TestTheHelmGeneratorMakesItsOwnCAWhenAskedFor(t *testing.T) {
	objs := render(t, map[string]any{"certManager": map[string]any{"enabled": false}, "certificates": map[string]any{"generator": "helm"}})
	if len(all[*certmanagerv1.Certificate](objs)) != 0 {
		t.Error("cert-manager objects rendered with certManager.enabled=false")
	}
	secret := find[*corev1.Secret](t, objs, "image-pin-webhook-tls")
	mwc := find[*admissionregistrationv1.MutatingWebhookConfiguration](t, objs, "")
	if string(mwc.Webhooks[0].ClientConfig.CABundle) != string(secret.Data["ca.crt"]) {
		t.Fatal("the caBundle is not the CA in the Secret")
	}
	block, _ := pem.Decode(secret.Data["tls.crt"])
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(secret.Data["ca.crt"])
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "image-pin-webhook." + ns + ".svc"}); err != nil {
		t.Errorf("the serving certificate does not verify for the Service: %v", err)
	}
}

func TestTheSchemaRejectsTypos(t *testing.T) {
	reg := func(k string, v any) map[string]any {
		return map[string]any{"registries": []any{map[string]any{"name": "r", "api_url": "https://r.io", "prefix": "r.io", k: v}}}
	}
	tests := []struct {
		name   string
		values map[string]any
	}{
		{"a misspelt registry key", reg("pingg", true)},
		{"ping as a string", reg("ping", "yes")},
		{"insecure as a string", reg("insecure", "no")},
		{"default as a string", reg("default", "true")},
		{"a credentials source of no known kind", reg("credentials", "user:password")},
		{"an aws: option with a slash", reg("credentials", "aws:region=eu/west")},
		{"an IRSA role that is not a role ARN", map[string]any{"cloud": map[string]any{"aws": map[string]any{"roleArn": "pin"}}}},
		{"a misspelt cloud key", map[string]any{"cloud": map[string]any{"aws": map[string]any{"rolearn": "x"}}}},
		{"an unknown projectToken", map[string]any{"cloud": map[string]any{"aws": map[string]any{"projectToken": "yes"}}}},
		{"a misspelt top-level key", map[string]any{"registry": []any{}}},
		{"a misspelt policy key", map[string]any{"policy": map[string]any{"cachettl": "5m"}}},
		{"an unknown strategy", map[string]any{"policy": map[string]any{"strategy": "latest"}}},
		{"a failurePolicy that is neither Ignore nor Fail", map[string]any{"webhook": map[string]any{"failurePolicy": "ignore"}}},
		{"an unknown certificate generator", map[string]any{"certificates": map[string]any{"generator": "openssl"}}},
		{"extraArgs that are not flags", map[string]any{"extraArgs": []any{"debug"}}},
		{"hostNetwork as a string", map[string]any{"hostNetwork": "true"}},
		{"an unknown dnsPolicy", map[string]any{"dnsPolicy": "ClusterLast"}},
		{"a misspelt clientCA key", map[string]any{"clientCA": map[string]any{"secret": "ca"}}},
		{"a misspelt networkPolicy.apiServer key", map[string]any{"networkPolicy": map[string]any{"apiServer": map[string]any{"cidr": []any{"10.0.0.0/8"}}}}},
		{"an unknown Cilium entity", map[string]any{"networkPolicy": map[string]any{"enabled": true, "apiServer": map[string]any{"ciliumEntities": []any{"apiserver"}}}}},
		{"a CIDR that is not one", map[string]any{"networkPolicy": map[string]any{"enabled": true, "apiServer": map[string]any{"cidrs": []any{"control-plane"}}}}},
		{"an extraEnv entry without a name", map[string]any{"extraEnv": []any{map[string]any{"value": "x"}}}},
		{"a misspelt prometheusRule key", map[string]any{"metrics": map[string]any{"prometheusRule": map[string]any{"enable": true}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := cluster.Render("image-pin-webhook", ns, tc.values); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestHelmLintIsClean(t *testing.T) {
	for _, values := range []map[string]any{nil, seedValues(t), {"certManager": map[string]any{"enabled": false}},
		{"certManager": map[string]any{"enabled": false}, "certificates": map[string]any{"generator": "helm"}},
		{"networkPolicy": map[string]any{"enabled": true, "apiServer": map[string]any{"cidrs": []any{"172.18.0.0/24"}, "ciliumEntities": []any{"kube-apiserver"}}}},
		{"metrics": map[string]any{"prometheusRule": map[string]any{"enabled": true}, "dashboard": map[string]any{"enabled": true}}},
		{"clientCA": map[string]any{"secretName": "apiserver-client-ca", "certName": "kube-apiserver"}, "hostNetwork": true, "extraArgs": []any{"--shutdown-delay=10s"}},
	} {
		res := lint.AllWithKubeVersion(cluster.ChartDir(), values, ns, nil)
		for _, m := range res.Messages {
			if m.Severity >= support.WarningSev {
				t.Errorf("helm lint: %s", m)
			}
		}
	}
}

func TestAServiceMonitorSelectsTheMetricsService(t *testing.T) {
	objs := render(t, map[string]any{"metrics": map[string]any{"serviceMonitor": map[string]any{"enabled": true, "labels": map[string]any{"release": "prom"}}}})
	var sm *unstructured.Unstructured
	for _, o := range objs {
		if u, ok := o.(*unstructured.Unstructured); ok && u.GetKind() == "ServiceMonitor" {
			sm = u
		}
	}
	if sm == nil {
		t.Fatal("no ServiceMonitor rendered")
	}
	if sm.GetLabels()["release"] != "prom" {
		t.Errorf("labels %v", sm.GetLabels())
	}
	sel, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
	svc := find[*corev1.Service](t, objs, "image-pin-webhook-metrics")
	for k, v := range sel {
		if svc.Labels[k] != v {
			t.Errorf("the ServiceMonitor selects %s=%s; the metrics Service has %v", k, v, svc.Labels)
		}
	}
	if len(all[*unstructured.Unstructured](render(t, nil))) != 0 {
		t.Error("a ServiceMonitor is rendered by default")
	}
}

func TestCloudIdentityValuesAnnotateTheServiceAccountAndProjectTokens(t *testing.T) {
	objs := render(t, map[string]any{
		"serviceAccount": map[string]any{"annotations": map[string]any{"team": "platform"}},
		"cloud": map[string]any{
			"aws":   map[string]any{"roleArn": "arn:aws:iam::000000000000:role/pin", "region": "eu-west-1", "projectToken": "irsa"},
			"gcp":   map[string]any{"serviceAccount": "pin@project.iam.gserviceaccount.com"},
			"azure": map[string]any{"clientId": "00000000-0000-0000-0000-000000000001", "tenantId": "00000000-0000-0000-0000-000000000002", "projectToken": true},
		},
		"registries": []any{map[string]any{"name": "ECR", "api_url": "https://000000000000.dkr.ecr.eu-west-1.amazonaws.com",
			"prefix": "000000000000.dkr.ecr.eu-west-1.amazonaws.com", "credentials": "aws:"}},
	})
	sa := find[*corev1.ServiceAccount](t, objs, "")
	for k, v := range map[string]string{
		"team":                              "platform",
		"eks.amazonaws.com/role-arn":        "arn:aws:iam::000000000000:role/pin",
		"iam.gke.io/gcp-service-account":    "pin@project.iam.gserviceaccount.com",
		"azure.workload.identity/client-id": "00000000-0000-0000-0000-000000000001",
		"azure.workload.identity/tenant-id": "00000000-0000-0000-0000-000000000002",
	} {
		if sa.Annotations[k] != v {
			t.Errorf("ServiceAccount annotation %s = %q, want %q", k, sa.Annotations[k], v)
		}
	}
	dep := find[*appsv1.Deployment](t, objs, "")
	if dep.Spec.Template.Labels["azure.workload.identity/use"] != "true" {
		t.Errorf("pod labels %v lack azure.workload.identity/use", dep.Spec.Template.Labels)
	}
	env := map[string]string{}
	for _, e := range dep.Spec.Template.Spec.Containers[0].Env {
		env[e.Name] = e.Value
	}
	for k, v := range map[string]string{
		"AWS_REGION":                  "eu-west-1",
		"AWS_ROLE_ARN":                "arn:aws:iam::000000000000:role/pin",
		"AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/secrets/eks.amazonaws.com/serviceaccount/token",
		"AZURE_FEDERATED_TOKEN_FILE":  "/var/run/secrets/azure/tokens/azure-identity-token",
		"AZURE_CLIENT_ID":             "00000000-0000-0000-0000-000000000001",
	} {
		if env[k] != v {
			t.Errorf("env %s = %q, want %q", k, env[k], v)
		}
	}
	audiences := map[string]string{}
	for _, v := range dep.Spec.Template.Spec.Volumes {
		if v.Projected != nil && len(v.Projected.Sources) == 1 && v.Projected.Sources[0].ServiceAccountToken != nil {
			audiences[v.Name] = v.Projected.Sources[0].ServiceAccountToken.Audience
		}
	}
	if audiences["aws-iam-token"] != "sts.amazonaws.com" || audiences["azure-identity-token"] != "api://AzureADTokenExchange" {
		t.Errorf("projected token audiences %v", audiences)
	}
	mounts := map[string]string{}
	for _, m := range dep.Spec.Template.Spec.Containers[0].VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	if mounts["aws-iam-token"] != "/var/run/secrets/eks.amazonaws.com/serviceaccount" || mounts["azure-identity-token"] != "/var/run/secrets/azure/tokens" {
		t.Errorf("mounts %v", mounts)
	}
}

func TestEKSPodIdentityGetsItsOwnTokenAndNothingElse(t *testing.T) {
	objs := render(t, map[string]any{"cloud": map[string]any{"aws": map[string]any{"projectToken": "podIdentity"}}})
	sa := find[*corev1.ServiceAccount](t, objs, "")
	if len(sa.Annotations) != 0 {
		t.Errorf("ServiceAccount annotations %v, want none", sa.Annotations)
	}
	dep := find[*appsv1.Deployment](t, objs, "")
	spec := dep.Spec.Template.Spec
	var tokenFile string
	for _, e := range spec.Containers[0].Env {
		if e.Name == "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE" {
			tokenFile = e.Value
		}
		if strings.HasPrefix(e.Name, "AZURE_") || e.Name == "AWS_ROLE_ARN" {
			t.Errorf("unexpected env %s", e.Name)
		}
	}
	if tokenFile != "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token" {
		t.Errorf("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE = %q", tokenFile)
	}
	found := false
	for _, v := range spec.Volumes {
		found = found || (v.Name == "eks-pod-identity-token" && v.Projected.Sources[0].ServiceAccountToken.Audience == "pods.eks.amazonaws.com")
	}
	if !found {
		t.Error("no projected pods.eks.amazonaws.com token")
	}
	if _, ok := dep.Spec.Template.Labels["azure.workload.identity/use"]; ok {
		t.Error("azure label without cloud.azure.clientId")
	}
}

func TestANetworkPolicyKeepsPodsFromTheAdmissionPort(t *testing.T) {
	v := seedValues(t)
	v["networkPolicy"] = map[string]any{"enabled": true, "podCIDRs": []any{"10.244.0.0/16", "fd00:10:244::/56"},
		"apiServer": map[string]any{"cidrs": []any{"0.0.0.0/0", "::/0"}}}
	np := find[*networkingv1.NetworkPolicy](t, render(t, v), "")
	if len(np.Spec.Ingress) != 2 {
		t.Fatalf("ingress rules = %d, want the admission port and metrics", len(np.Spec.Ingress))
	}
	adm := np.Spec.Ingress[0]
	if adm.Ports[0].Port.IntValue() != 9443 {
		t.Errorf("the first rule is for port %v, want 9443", adm.Ports[0].Port)
	}
	for _, peer := range adm.From {
		if peer.IPBlock == nil || len(peer.IPBlock.Except) != 1 {
			t.Errorf("peer %+v: want an ipBlock excepting the pod CIDR of its family", peer)
		}
		if peer.PodSelector != nil || peer.NamespaceSelector != nil {
			t.Errorf("peer %+v lets pods reach the admission port", peer)
		}
	}
	if m := np.Spec.Ingress[1]; m.Ports[0].Port.IntValue() != 8080 || m.From[0].NamespaceSelector == nil {
		t.Errorf("the metrics rule is %+v, want port 8080 from the monitoring namespace", m)
	}
	v["networkPolicy"] = map[string]any{"enabled": false}
	if nps := all[*networkingv1.NetworkPolicy](render(t, v)); len(nps) != 0 {
		t.Errorf("enabled: false still renders %d NetworkPolicies", len(nps))
	}
}
