package envtest

import "testing"

// Issue 22 item 7 as a user meets it with the real kubectl: opting a
// Deployment out goes back to the image as written, and removing the
// opt-out is the user asking for a pin, on that apply, with no rollout
// restart.
func TestKubectlApplyWithoutTheOptOutPinsAgain(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		labels map[string]string
		ann    map[string]string
	}{
		{"the image-pin.io/strategy: skip annotation", nil, map[string]string{"image-pin.io/strategy": "skip"}},
		{"the image-pin.io/skip label", map[string]string{"image-pin.io/skip": "true"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ns := namespace(t, true)
			name := uniq("app")
			image := s.plain.Host + "/" + name + ":1"
			pinned := image + "@" + push(t, s.plain, name+":1")
			git := manifest{Namespace: ns, Image: image}
			kubectlOK(t, "apply", "-f", git.file(t))
			waitSettledOn(t, ns, pinned, []string{pinned}, 2)

			optedOut := manifest{Namespace: ns, Image: image, Labels: tc.labels}
			kubectlOK(t, "apply", "-f", optedOut.annotated(t, tc.ann))
			waitSettledOn(t, ns, image, []string{pinned, image}, 2)

			// The first revision's template again: its ReplicaSet scales back up.
			kubectlOK(t, "apply", "-f", git.file(t))
			waitSettledOn(t, ns, pinned, []string{pinned, image}, 2)
		})
	}
}
