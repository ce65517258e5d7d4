package envtest

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func TestKubectlCreateJobFromACronJobCarriesTheCronJobsPin(t *testing.T) {
	t.Parallel()
	ns := namespace(t, true)
	name := uniq("nightly")
	repo := s.plain.Host + "/" + name
	pinned := repo + ":1@" + push(t, s.plain, name+":1")
	path := filepath.Join(t.TempDir(), "cronjob.yaml")
	cron := fmt.Sprintf(`apiVersion: batch/v1
kind: CronJob
metadata:
  name: nightly
  namespace: %s
spec:
  schedule: "0 2 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
          - name: report
            image: %s:1
`, ns, repo)
	if err := os.WriteFile(path, []byte(cron), 0o644); err != nil {
		t.Fatal(err)
	}
	kubectlOK(t, "apply", "-f", path)
	push(t, s.plain, name+":1") // the tag moves: a Job made now must still run what the CronJob pinned
	waitOutCacheTTL()
	kubectlOK(t, "-n", ns, "create", "job", "manual", "--from=cronjob/nightly")

	c, _ := kube(t)
	var job batchv1.Job
	if err := c.Get(ctx(t), client.ObjectKey{Namespace: ns, Name: "manual"}, &job); err != nil {
		t.Fatal(err)
	}
	if got := job.Spec.Template.Spec.Containers[0].Image; got != pinned {
		t.Errorf("the Job holds %s, want the CronJob's %s", got, pinned)
	}
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		var pods corev1.PodList
		if err := c.List(ctx(t), &pods, client.InNamespace(ns), client.MatchingLabels{"batch.kubernetes.io/job-name": "manual"}); err != nil {
			t.Fatal(err)
		}
		if len(pods.Items) > 0 {
			if got := pods.Items[0].Spec.Containers[0].Image; got != pinned {
				t.Errorf("the Job's Pod holds %s, want the CronJob's %s", got, pinned)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the job controller made no Pod within 90s")
		}
	}
}

func TestKubectlDebugPinsTheEphemeralContainer(t *testing.T) {
	t.Parallel()
	ns := namespace(t, true)
	name := uniq("debug")
	repo := s.plain.Host + "/" + name
	app := repo + ":app@" + push(t, s.plain, name+":app")
	debugger := repo + ":debug@" + push(t, s.plain, name+":debug")
	kubectlOK(t, "apply", "-f", manifest{Namespace: ns, Image: repo + ":app"}.file(t))
	r := waitSettled(t, ns, app, 1, 2)
	target := sortedKeys(r.pods)[0]
	kubectlOK(t, "-n", ns, "debug", "pod/"+target, "--image="+repo+":debug", "--target=app", "--container=debugger")

	c, _ := kube(t)
	var p corev1.Pod
	if err := c.Get(ctx(t), client.ObjectKey{Namespace: ns, Name: target}, &p); err != nil {
		t.Fatal(err)
	}
	if len(p.Spec.EphemeralContainers) != 1 {
		t.Fatalf("the Pod has %d ephemeral containers, want 1", len(p.Spec.EphemeralContainers))
	}
	if got := p.Spec.EphemeralContainers[0].Image; got != debugger {
		t.Errorf("the ephemeral container holds %s, want %s", got, debugger)
	}
	if got := p.Spec.Containers[0].Image; got != app {
		t.Errorf("the Pod's own container now holds %s, want %s", got, app)
	}
}
