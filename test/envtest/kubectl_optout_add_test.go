package envtest

import "testing"

// Issue 22 item 7, the other way round, with the real kubectl: opting a
// pinned Deployment out by kubectl label or kubectl annotate alone (the
// image unchanged in the request) goes back to the image as written, from
// the original-images record, as a re-apply with the opt-out does; taking
// the opt-out away again pins, on that command, with no rollout restart.
func TestKubectlLabelOrAnnotateAddingAnOptOutRestoresTheWrittenImage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		add, remove []string // kubectl arguments after the object
	}{
		{"kubectl label image-pin.io/skip=true", []string{"label", "image-pin.io/skip=true"}, []string{"label", "image-pin.io/skip-"}},
		{"kubectl annotate image-pin.io/strategy=skip", []string{"annotate", "image-pin.io/strategy=skip"}, []string{"annotate", "image-pin.io/strategy-"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ns := namespace(t, true)
			name := uniq("app")
			image := s.plain.Host + "/" + name + ":1"
			pinned := image + "@" + push(t, s.plain, name+":1")
			kubectlOK(t, "apply", "-f", manifest{Namespace: ns, Image: image}.file(t))
			waitSettledOn(t, ns, pinned, []string{pinned}, 2)

			kubectlOK(t, tc.add[0], "-n", ns, "deployment/web", tc.add[1])
			waitSettledOn(t, ns, image, []string{pinned, image}, 2)

			kubectlOK(t, tc.remove[0], "-n", ns, "deployment/web", tc.remove[1])
			waitSettledOn(t, ns, pinned, []string{pinned, image}, 2)
		})
	}
}
