package envtest

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// GitOps tools decide "in sync" from a server-side dry run: Flux's
// kustomize-controller always, Argo CD with ServerSideDiff=true. kubectl diff
// asks the API server the same way, so the webhook answers it as it answers
// them.
func TestServerSideDiffsShowARealChangeAndNothingElse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		apply, diff []string
	}{
		{"applied server-side as Flux and Argo CD do, compared with kubectl diff --server-side",
			[]string{"apply", "--server-side"}, []string{"diff", "--server-side"}},
		{"applied client-side, compared with kubectl diff (a dry-run patch)",
			[]string{"apply"}, []string{"diff"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ns := namespace(t, true)
			name := uniq("gitops")
			repo := s.plain.Host + "/" + name
			pinned := repo + ":v1@" + push(t, s.plain, name+":v1")
			git := manifest{Namespace: ns, Image: repo + ":v1"}
			kubectlOK(t, append(tc.apply, "-f", git.file(t))...)
			before := waitSettled(t, ns, pinned, 1, 2)

			if out, code := kubectl(t, append(tc.diff, "-f", git.file(t))...); code != 0 || out != "" {
				t.Fatalf("right after the pin: exit %d, want 0 (no drift):\n%s", code, out)
			}
			push(t, s.plain, name+":v1")
			waitOutCacheTTL()
			if out, code := kubectl(t, append(tc.diff, "-f", git.file(t))...); code != 0 || out != "" {
				t.Fatalf("after the tag moved in the registry: exit %d, want 0 (no drift):\n%s", code, out)
			}
			next := repo + ":v2@" + push(t, s.plain, name+":v2")
			changed := manifest{Namespace: ns, Image: repo + ":v2"}
			out, code := kubectl(t, append(tc.diff, "-f", changed.file(t))...)
			if code != 1 {
				t.Fatalf("after the manifest's tag changed: exit %d, want 1 (a difference):\n%s", code, out)
			}
			if !hasLine(out, "-", "image: "+pinned) || !hasLine(out, "+", "image: "+next) {
				t.Errorf("the diff does not show %s replaced by %s:\n%s", pinned, next, out)
			}
			// Dry runs leave the cluster as it was.
			after := waitSettled(t, ns, pinned, 1, 2)
			if before.String() != after.String() {
				t.Errorf("the diffs changed the cluster:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
}

// hasLine reports whether diff output holds a line starting with sign
// whose content ends with text.
func hasLine(out, sign, text string) bool {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, sign) && strings.HasSuffix(strings.TrimSpace(l), text) {
			return true
		}
	}
	return false
}

// A dry run (kubectl --dry-run=server, kubectl diff, GitOps previews) must
// answer exactly as the real request would, and leave nothing behind but
// what the webhook cached.
func TestADryRunAdmissionAnswersAsTheRealOneAndLeavesNothingBehind(t *testing.T) {
	t.Parallel()
	name := uniq("dry")
	repo := s.plain.Host + "/" + name
	first := repo + ":v1@" + push(t, s.plain, name+":v1")
	dryNS, realNS := namespace(t, true), namespace(t, true)
	c, w := kube(t)

	// admitted is what a Deployment looks like after admission.
	type admitted struct {
		image, originals string
		warnings         string
		err              string
	}
	of := func(d *appsv1.Deployment, err error) admitted {
		a := admitted{warnings: w.all()}
		if err != nil {
			a.err = err.Error()
			return a
		}
		a.image, a.originals = d.Spec.Template.Spec.Containers[0].Image, d.Annotations["image-pin.io/original-images"]
		return a
	}
	create := func(ns, objName, image string, opts ...client.CreateOption) admitted {
		w.reset()
		d := deploy(ns, nil, image)
		d.Name = objName
		return of(d, c.Create(ctx(t), d, opts...))
	}

	t.Run("a create", func(t *testing.T) {
		for objName, image := range map[string]string{
			"pinned":  repo + ":v1",
			"ignored": s.tokenReg.Host + "/wrong-ignore/" + name + ":1", // left as it is, with a warning
			"denied":  s.tokenReg.Host + "/wrong-fail/" + name + ":1",   // denied
		} {
			dry, real := create(dryNS, objName, image, client.DryRunAll), create(realNS, objName, image)
			if dry != real {
				t.Errorf("%s: the dry run answered\n%+v\nthe real create\n%+v", image, dry, real)
			}
		}
	})

	// Updates: each is tried as a dry run, then for real, on the live object.
	live := &appsv1.Deployment{}
	if err := c.Get(ctx(t), client.ObjectKey{Namespace: realNS, Name: "pinned"}, live); err != nil {
		t.Fatal(err)
	}
	if got := live.Spec.Template.Spec.Containers[0].Image; got != first {
		t.Fatalf("stored %s, want %s", got, first)
	}
	moved := repo + ":v1@" + push(t, s.plain, name+":v1")
	waitOutCacheTTL()
	updates := []struct {
		name   string
		change func(d *appsv1.Deployment)
		want   string
	}{
		{"a re-apply of the manifest after the tag moved", func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.Containers[0].Image = repo + ":v1"
		}, first},
		{"a rollout restart", func(d *appsv1.Deployment) {
			d.Spec.Template.Annotations = map[string]string{"kubectl.kubernetes.io/restartedAt": time.Now().UTC().Format(time.RFC3339)}
		}, moved},
		{"a changed tag", func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.Containers[0].Image = repo + ":v2"
		}, repo + ":v2@" + push(t, s.plain, name+":v2")},
	}
	for _, u := range updates {
		t.Run(u.name, func(t *testing.T) {
			var dry, real admitted
			// The deployment controller keeps writing the status and its
			// revision annotation: on a conflict, start again from the
			// object as it now is.
			err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
				if err := c.Get(ctx(t), client.ObjectKeyFromObject(live), live); err != nil {
					return err
				}
				gen, ann := live.Generation, live.Annotations["image-pin.io/original-images"]
				dryObj, realObj := live.DeepCopy(), live.DeepCopy()
				u.change(dryObj)
				u.change(realObj)
				w.reset()
				if err := c.Update(ctx(t), dryObj, client.DryRunAll); apierrors.IsConflict(err) {
					return err
				} else {
					dry = of(dryObj, err)
				}
				// The spec's generation and the webhook's annotation say
				// whether the dry run stored anything.
				if err := c.Get(ctx(t), client.ObjectKeyFromObject(live), live); err != nil {
					return err
				}
				if live.Generation != gen || live.Annotations["image-pin.io/original-images"] != ann {
					t.Fatalf("the dry run changed the live object (generation %d → %d, original-images %s → %s)",
						gen, live.Generation, ann, live.Annotations["image-pin.io/original-images"])
				}
				w.reset()
				if err := c.Update(ctx(t), realObj); apierrors.IsConflict(err) {
					return err
				} else {
					real = of(realObj, err)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if dry != real {
				t.Errorf("the dry run answered\n%+v\nthe real update\n%+v", dry, real)
			}
			if real.image != u.want {
				t.Errorf("stored %s, want %s", real.image, u.want)
			}
		})
	}

	t.Run("nothing is left in the namespace of the dry runs", func(t *testing.T) {
		// A Deployment stored after the dry runs: once the controllers have
		// made its Pod, they have seen whatever the dry runs might have
		// stored before it (their watches deliver in order), and made what
		// they would of it.
		sentinel := deploy(namespace(t, false), nil, "quay.invalid/sentinel:1")
		if err := c.Create(ctx(t), sentinel); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the controllers make the sentinel Deployment's Pod", func() bool {
			var pods corev1.PodList
			return c.List(ctx(t), &pods, client.InNamespace(sentinel.Namespace)) == nil && len(pods.Items) > 0
		})
		for _, list := range []client.ObjectList{&appsv1.DeploymentList{}, &appsv1.ReplicaSetList{}, &corev1.PodList{}, &eventsv1.EventList{}} {
			if err := c.List(ctx(t), list, client.InNamespace(dryNS)); err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(list)
			var items struct{ Items []json.RawMessage }
			_ = json.Unmarshal(b, &items)
			if len(items.Items) != 0 {
				t.Errorf("%T holds %d items: %s", list, len(items.Items), b)
			}
		}
	})
}
