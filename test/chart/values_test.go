package chart_test

import (
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/image-pin/image-pin-webhook/test/chart"
)

func renderErr(t *testing.T, values map[string]any) error {
	t.Helper()
	_, err := chart.Render("image-pin-webhook", ns, values)
	return err
}

func pod(t *testing.T, values map[string]any) corev1.PodSpec {
	t.Helper()
	return find[*appsv1.Deployment](t, render(t, values), "").Spec.Template.Spec
}

// The values users of other charts expect, each rendered where it belongs.
func TestTheValuesUsersExpectReachThePod(t *testing.T) {
	tests := []struct {
		name   string
		values map[string]any
		check  func(t *testing.T, spec corev1.PodSpec)
	}{
		{"extraArgs come after the chart's own flags", map[string]any{"extraArgs": []any{"--shutdown-delay=10s", "--zap-log-level=debug"}},
			func(t *testing.T, spec corev1.PodSpec) {
				args := spec.Containers[0].Args
				if n := len(args); n < 3 || args[n-2] != "--shutdown-delay=10s" || args[n-1] != "--zap-log-level=debug" {
					t.Errorf("args %q", args)
				}
				if !slices.Contains(args, "--config=/etc/image-pin-webhook/config/config.yaml") {
					t.Errorf("the chart's own flags are gone: %q", args)
				}
			}},
		{"extraEnv is added to the chart's variables", map[string]any{"extraEnv": []any{map[string]any{"name": "HUB_CREDS",
			"valueFrom": map[string]any{"secretKeyRef": map[string]any{"name": "hub", "key": "creds"}}}}},
			func(t *testing.T, spec corev1.PodSpec) {
				var names []string
				for _, e := range spec.Containers[0].Env {
					names = append(names, e.Name)
					if e.Name == "HUB_CREDS" && (e.ValueFrom == nil || e.ValueFrom.SecretKeyRef.Name != "hub") {
						t.Errorf("HUB_CREDS = %+v", e)
					}
				}
				if !slices.Contains(names, "HUB_CREDS") || !slices.Contains(names, "POD_NAMESPACE") {
					t.Errorf("env %v", names)
				}
			}},
		{"extraVolumes and extraVolumeMounts mount a CA bundle for ca_file", map[string]any{
			"extraVolumes":      []any{map[string]any{"name": "corp-ca", "configMap": map[string]any{"name": "corp-ca"}}},
			"extraVolumeMounts": []any{map[string]any{"name": "corp-ca", "mountPath": "/etc/corp-ca", "readOnly": true}}},
			func(t *testing.T, spec corev1.PodSpec) {
				if !slices.ContainsFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == "corp-ca" && v.ConfigMap != nil }) {
					t.Errorf("volumes %+v", spec.Volumes)
				}
				if !slices.ContainsFunc(spec.Containers[0].VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == "corp-ca" && m.MountPath == "/etc/corp-ca" }) {
					t.Errorf("mounts %+v", spec.Containers[0].VolumeMounts)
				}
			}},
		{"hostNetwork brings the DNS policy that goes with it", map[string]any{"hostNetwork": true},
			func(t *testing.T, spec corev1.PodSpec) {
				if !spec.HostNetwork || spec.DNSPolicy != corev1.DNSClusterFirstWithHostNet {
					t.Errorf("hostNetwork %v, dnsPolicy %q", spec.HostNetwork, spec.DNSPolicy)
				}
			}},
		{"dnsPolicy given wins", map[string]any{"hostNetwork": true, "dnsPolicy": "Default"},
			func(t *testing.T, spec corev1.PodSpec) {
				if spec.DNSPolicy != corev1.DNSDefault {
					t.Errorf("dnsPolicy %q", spec.DNSPolicy)
				}
			}},
		{"by default the pod network and the cluster's DNS", nil,
			func(t *testing.T, spec corev1.PodSpec) {
				if spec.HostNetwork || spec.DNSPolicy != "" {
					t.Errorf("hostNetwork %v, dnsPolicy %q", spec.HostNetwork, spec.DNSPolicy)
				}
			}},
		{"podSecurityContext replaces a field and keeps the rest", map[string]any{"podSecurityContext": map[string]any{"runAsUser": 1000, "fsGroup": 1000}},
			func(t *testing.T, spec corev1.PodSpec) {
				psc := spec.SecurityContext
				if *psc.RunAsUser != 1000 || *psc.FSGroup != 1000 || !*psc.RunAsNonRoot || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
					t.Errorf("pod securityContext %+v", psc)
				}
			}},
		{"securityContext replaces a field and keeps the rest", map[string]any{"securityContext": map[string]any{"readOnlyRootFilesystem": false}},
			func(t *testing.T, spec corev1.PodSpec) {
				sc := spec.Containers[0].SecurityContext
				if *sc.ReadOnlyRootFilesystem || *sc.AllowPrivilegeEscalation || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
					t.Errorf("container securityContext %+v", sc)
				}
			}},
		{"priorityClassName", map[string]any{"priorityClassName": "system-cluster-critical"},
			func(t *testing.T, spec corev1.PodSpec) {
				if spec.PriorityClassName != "system-cluster-critical" {
					t.Errorf("priorityClassName %q", spec.PriorityClassName)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.check(t, pod(t, tc.values)) })
	}
}

// clientCA mounts the CA and passes --client-ca-file (and --client-cert-name
// when a name is given), from a Secret or a ConfigMap.
func TestClientCAMountsTheCAAndAddsBothFlags(t *testing.T) {
	tests := []struct {
		name     string
		clientCA map[string]any
		args     []string
		source   func(v corev1.Volume) bool
	}{
		{"from a Secret, with the name the API server's certificate carries",
			map[string]any{"secretName": "apiserver-client-ca", "certName": "kube-apiserver-webhook-client"},
			[]string{"--client-ca-file=/etc/image-pin-webhook/client-ca/ca.crt", "--client-cert-name=kube-apiserver-webhook-client"},
			func(v corev1.Volume) bool { return v.Secret != nil && v.Secret.SecretName == "apiserver-client-ca" }},
		{"from a ConfigMap, under another key, without a name",
			map[string]any{"configMapName": "apiserver-client-ca", "key": "client-ca.pem"},
			[]string{"--client-ca-file=/etc/image-pin-webhook/client-ca/client-ca.pem"},
			func(v corev1.Volume) bool {
				return v.ConfigMap != nil && v.ConfigMap.Name == "apiserver-client-ca" && v.ConfigMap.Items[0].Key == "client-ca.pem"
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := pod(t, map[string]any{"clientCA": tc.clientCA})
			var got []string
			for _, a := range spec.Containers[0].Args {
				if strings.HasPrefix(a, "--client-") {
					got = append(got, a)
				}
			}
			if !slices.Equal(got, tc.args) {
				t.Errorf("args %q, want %q", got, tc.args)
			}
			if !slices.ContainsFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == "client-ca" && tc.source(v) }) {
				t.Errorf("volumes %+v", spec.Volumes)
			}
			if !slices.ContainsFunc(spec.Containers[0].VolumeMounts, func(m corev1.VolumeMount) bool {
				return m.Name == "client-ca" && m.MountPath == "/etc/image-pin-webhook/client-ca" && m.ReadOnly
			}) {
				t.Errorf("mounts %+v", spec.Containers[0].VolumeMounts)
			}
		})
	}
	for _, a := range pod(t, nil).Containers[0].Args {
		if strings.HasPrefix(a, "--client-") {
			t.Errorf("without clientCA: %s", a)
		}
	}
	for name, bad := range map[string]map[string]any{
		"both sources": {"secretName": "a", "configMapName": "b"},
		"a name alone": {"certName": "kube-apiserver"},
	} {
		if err := renderErr(t, map[string]any{"clientCA": bad}); err == nil || !strings.Contains(err.Error(), "clientCA") {
			t.Errorf("%s: %v, want a refusal naming clientCA", name, err)
		}
	}
}
