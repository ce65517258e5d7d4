package cli

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestAManifestGivesThePodsPullSecretsServiceAccountAndNamespaceWhateverItsKind(t *testing.T) {
	tests := []struct {
		name, doc       string
		ns, sa, secrets string
	}{
		{"a Deployment in YAML", `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: team-a}
spec:
  template:
    spec:
      serviceAccountName: puller
      imagePullSecrets: [{name: one}, {name: two}]
      containers: [{name: app, image: r.example/app:1}]
`, "team-a", "puller", "one,two"},
		{"a CronJob without a namespace", `kind: CronJob
spec: {jobTemplate: {spec: {template: {spec: {imagePullSecrets: [{name: cron}], containers: [{name: c, image: x}]}}}}}
`, "", "", "cron"},
		{"a Pod in JSON", `{"kind":"Pod","metadata":{"namespace":"team-b"},"spec":{"serviceAccountName":"sa","containers":[{"name":"c","image":"x"}]}}`, "team-b", "sa", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "m.yaml")
			if err := os.WriteFile(path, []byte(tc.doc), 0o644); err != nil {
				t.Fatal(err)
			}
			ns, sa, secrets, err := manifestWorkload(path)
			if err != nil {
				t.Fatal(err)
			}
			if ns != tc.ns || sa != tc.sa || !slices.Equal(secrets, strings.FieldsFunc(tc.secrets, func(r rune) bool { return r == ',' })) {
				t.Errorf("got namespace %q, service account %q, secrets %q", ns, sa, secrets)
			}
		})
	}
	path := filepath.Join(t.TempDir(), "cm.yaml")
	_ = os.WriteFile(path, []byte("kind: ConfigMap\ndata: {a: b}\n"), 0o644)
	if _, _, _, err := manifestWorkload(path); err == nil || !strings.Contains(err.Error(), "no pod spec") {
		t.Errorf("a ConfigMap: err = %v, want one saying it has no pod spec", err)
	}
}
