package envtest

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// image-pin-webhook drift, run as a user runs it, on the real API server
// with the chart's CRD: a replica of the built binary pins the workloads
// and writes the record, the tag moves, a rollout restart elsewhere
// updates the record, and drift names the workloads left on the old
// digest, in opted-in namespaces only.

// driftAnswer is what the test reads of drift -o json.
type driftAnswer struct {
	Kind       string
	Version    int
	Namespaces []string
	Items      []struct {
		Namespace, Kind, Name, Container, ContainerType, Status, Image, Strategy, Since, Record string
		Pinned, Current                                                                         *struct{ Tag, Digest string }
	}
	Summary struct{ Drifted, Current, NoRecord, Ambiguous, Unpinned int }
}

// driftCLI runs drift against the suite's API server and this test's
// records.
func (e *stateEnv) driftCLI(args ...string) (int, string, string) {
	e.t.Helper()
	return cli(e.t, nil, append([]string{"drift", "--kubeconfig", s.kubecfg, "--state-namespace", e.stateNS}, args...)...)
}

func (e *stateEnv) driftJSON(args ...string) driftAnswer {
	e.t.Helper()
	code, out, errOut := e.driftCLI(append(args, "-o", "json")...)
	var a driftAnswer
	if err := json.Unmarshal([]byte(out), &a); code != 0 || err != nil {
		e.t.Fatalf("drift %v -o json: exit %d, %v\n%s%s", args, code, err, out, errOut)
	}
	return a
}

// labelEnabled opts ns in, keeping its other labels.
func (e *stateEnv) labelEnabled(ns string) {
	e.t.Helper()
	patch := []byte(`{"metadata":{"labels":{"image-pin.io/enabled":"true"}}}`)
	if err := e.c.Patch(ctx(e.t), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, client.RawPatch(types.MergePatchType, patch)); err != nil {
		e.t.Fatal(err)
	}
}

func TestDriftNamesTheWorkloadsLeftOnAMovedTagInOptedInNamespacesOnly(t *testing.T) {
	t.Parallel()
	e := newStateEnv(t)
	e.replica("a", e.config)
	// The replica pins in all three; only nsA is then opted in. nsB's
	// restart moves the record; nsC is left on the old digest too, and is
	// never opted in.
	nsA, nsB, nsC := e.namespace("drift-a", "a"), e.namespace("drift-b", "a"), e.namespace("drift-c", "a")
	for _, ns := range []string{nsA, nsB, nsC} {
		e.await(ns)
	}
	repo := uniq("drift")
	first := push(t, e.reg, repo+":latest")
	image := e.reg.Host + "/" + repo + ":latest"
	pinned := image + "@" + first
	for _, ns := range []string{nsA, nsB, nsC} {
		d := deploy(ns, nil, image)
		if err := e.c.Create(ctx(t), d); err != nil {
			t.Fatal(err)
		}
		if got := stored(t, d); got != pinned {
			t.Fatalf("the Deployment in %s stored %q, want %s", ns, got, pinned)
		}
	}
	// The other kinds drift reads, in nsA.
	for _, o := range driftKinds(nsA, image) {
		if err := e.c.Create(ctx(t), o); err != nil {
			t.Fatal(err)
		}
	}
	// A Pod without owner, with an init container of the same image.
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: nsA, Name: "job"},
		Spec: corev1.PodSpec{InitContainers: []corev1.Container{{Name: "setup", Image: image}}, Containers: []corev1.Container{{Name: "run", Image: image}}}}
	if err := e.c.Create(ctx(t), pod); err != nil {
		t.Fatal(err)
	}
	if pod.Spec.InitContainers[0].Image != pinned || pod.Spec.Containers[0].Image != pinned {
		t.Fatalf("the Pod stored %q and %q, want %s", pod.Spec.InitContainers[0].Image, pod.Spec.Containers[0].Image, pinned)
	}
	e.labelEnabled(nsA)

	// Nothing moved: no output, exit 0 (with --exit-code too), and the
	// JSON's empty list.
	code, out, errOut := e.driftCLI("-n", nsA, "--exit-code")
	if code != 0 || out != "" || !strings.Contains(errOut, "No drift in namespace "+nsA+" (6 pinned containers on their record's digest).") {
		t.Fatalf("before the move: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if a := e.driftJSON("-n", nsA); a.Kind != "DriftReport" || a.Version != 1 || len(a.Items) != 0 || a.Summary.Current != 6 || a.Summary.Drifted != 0 {
		t.Fatalf("before the move, -o json: %+v", a)
	}

	moved := push(t, e.reg, repo+":latest")
	restarted := deploy(nsB, nil, image)
	rolloutRestart(t, restarted)
	if got := stored(t, restarted); got != image+"@"+moved {
		t.Fatalf("after the restart nsB stored %q, want %s", got, moved)
	}
	recs := e.records(repo)
	if len(recs) != 1 || recs[0].Status.Digest != moved || len(recs[0].Status.History) != 1 || recs[0].Status.History[0].Digest != first {
		t.Fatalf("after the restart the records are %+v, want one with %s and %s in its history", recs, moved, first)
	}
	since := recs[0].Status.History[0].Until.UTC().Format(time.RFC3339)

	// Text: one line per drifted container of nsA, short digests; nothing
	// of nsB (current, and not opted in) nor of nsC (drifted, not opted in).
	code, out, errOut = e.driftCLI("-A")
	short := func(d string) string { return "latest@" + d[:len("sha256:")+12] }
	var mine []string
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, nsB) || strings.Contains(line, nsC) {
			t.Errorf("drift -A lists a namespace that is not opted in: %q", line)
		}
		if strings.HasPrefix(line, nsA+" ") {
			mine = append(mine, strings.Join(strings.Fields(line), " "))
		}
	}
	want := []string{
		nsA + " Deployment/web c0 " + image + " " + short(first) + " " + short(moved),
		nsA + " StatefulSet/db c0 " + image + " " + short(first) + " " + short(moved),
		nsA + " DaemonSet/agent c0 " + image + " " + short(first) + " " + short(moved),
		nsA + " CronJob/nightly c0 " + image + " " + short(first) + " " + short(moved),
		nsA + " Pod/job setup (init) " + image + " " + short(first) + " " + short(moved),
		nsA + " Pod/job run " + image + " " + short(first) + " " + short(moved),
	}
	if code != 0 || len(mine) != len(want) {
		t.Fatalf("drift -A: exit %d, lines of %s %q, want %d\n%s%s", code, nsA, mine, len(want), out, errOut)
	}
	for i := range want {
		if !strings.HasPrefix(mine[i], want[i]+" ") {
			t.Errorf("drift -A line %d is %q, want it to start with %q", i, mine[i], want[i])
		}
	}

	// JSON, from the records alone and with the webhook's config: both
	// digests, since when, the record.
	for _, args := range [][]string{{"-A"}, {"-n", nsA, "--config", e.config}} {
		a := e.driftJSON(args...)
		var got []string
		for _, it := range a.Items {
			if it.Namespace == nsB || it.Namespace == nsC {
				t.Errorf("drift %v lists %s/%s of a namespace that is not opted in", args, it.Namespace, it.Name)
			}
			if it.Namespace != nsA {
				continue
			}
			got = append(got, it.Kind+"/"+it.Name+"/"+it.Container+"/"+it.ContainerType)
			if it.Status != "drifted" || it.Image != image || it.Strategy != "digest" || it.Pinned == nil || it.Current == nil ||
				it.Pinned.Digest != first || it.Current.Digest != moved || it.Pinned.Tag != "latest" || it.Since != since || it.Record != recs[0].Name {
				t.Errorf("drift %v: item %+v pinned %+v current %+v; want drifted from %s to %s since %s (record %s)",
					args, it, it.Pinned, it.Current, first, moved, since, recs[0].Name)
			}
		}
		if strings.Join(got, " ") != "Deployment/web/c0/container StatefulSet/db/c0/container DaemonSet/agent/c0/container CronJob/nightly/c0/container Pod/job/setup/initContainer Pod/job/run/container" {
			t.Errorf("drift %v items of %s: %v", args, nsA, got)
		}
	}

	// --exit-code tells drift apart; wide prints the full digests; a
	// namespace that is not opted in is said to be so, and lists nothing.
	if code, _, errOut := e.driftCLI("-n", nsA, "--exit-code"); code != 3 {
		t.Errorf("--exit-code with drift: exit %d (%s), want 3", code, errOut)
	}
	if _, out, _ := e.driftCLI("-n", nsA, "-o", "wide"); !strings.Contains(out, "latest@"+first) || !strings.Contains(out, "latest@"+moved) || !strings.Contains(out, recs[0].Name) {
		t.Errorf("-o wide lacks the full digests or the record:\n%s", out)
	}
	code, out, errOut = e.driftCLI("-n", nsC)
	if code != 0 || out != "" || !strings.Contains(errOut, "Namespace "+nsC+" is not opted in") {
		t.Errorf("-n %s (not opted in): exit %d, stdout %q, stderr %q", nsC, code, out, errOut)
	}
	// The records are as drift found them: it wrote nothing.
	if after := e.records(repo); len(after) != 1 || after[0].ResourceVersion != recs[0].ResourceVersion {
		t.Errorf("drift changed the records: %+v", after)
	}
}

// driftKinds are a StatefulSet, a DaemonSet and a suspended CronJob of
// image, one container c0 each.
func driftKinds(ns, image string) []client.Object {
	labels := map[string]string{"app": "drift"}
	tmpl := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c0", Image: image}}}}
	sel := &metav1.LabelSelector{MatchLabels: labels}
	suspend := true
	jobTmpl := tmpl.DeepCopy()
	jobTmpl.Spec.RestartPolicy = corev1.RestartPolicyNever
	return []client.Object{
		&appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"}, Spec: appsv1.StatefulSetSpec{Selector: sel, Template: tmpl, ServiceName: "db"}},
		&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "agent"}, Spec: appsv1.DaemonSetSpec{Selector: sel, Template: tmpl}},
		&batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "nightly"}, Spec: batchv1.CronJobSpec{Schedule: "0 3 * * *", Suspend: &suspend,
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: *jobTmpl}}}},
	}
}
