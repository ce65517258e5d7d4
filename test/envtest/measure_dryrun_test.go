package envtest

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestKubectlApplyDryRunServerOfANewImageWritesNoRecord is the issue's
// dry-run measurement as a user runs it: `kubectl apply --dry-run=server`
// of a Deployment whose image no replica has seen prints it pinned and
// leaves no record; the apply itself then writes one.
// (TestADryRunWritesNoRecord checks the same through the Go client.)
func TestKubectlApplyDryRunServerOfANewImageWritesNoRecord(t *testing.T) {
	e := newStateEnv(t)
	e.replica("a", e.config)
	ns := e.namespace("state-kdry", "a")
	e.await(ns)
	repo := uniq("kdry")
	digest := push(t, e.reg, repo+":1")
	image := e.reg.Host + "/" + repo + ":1"
	path := filepath.Join(t.TempDir(), "deployment.yaml")
	doc := fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: dry, namespace: %s}
spec:
  selector: {matchLabels: {app: dry}}
  template:
    metadata: {labels: {app: dry}}
    spec:
      containers: [{name: app, image: %q}]
`, ns, image)
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	jsonpath := "jsonpath={.spec.template.spec.containers[0].image}"
	if got := kubectlOK(t, "apply", "--dry-run=server", "-f", path, "-o", jsonpath); got != image+"@"+digest {
		t.Fatalf("kubectl apply --dry-run=server printed %q, want it pinned to %s", got, digest)
	}
	if recs := e.records(repo); len(recs) != 0 {
		t.Fatalf("the dry run wrote %d records: %+v", len(recs), recs)
	}
	if got := kubectlOK(t, "apply", "-f", path, "-o", jsonpath); got != image+"@"+digest {
		t.Fatalf("kubectl apply printed %q, want it pinned to %s", got, digest)
	}
	if recs := e.records(repo); len(recs) != 1 || recs[0].Status.Digest != digest {
		t.Fatalf("after the apply the records are %+v, want one with %s", recs, digest)
	}
}
