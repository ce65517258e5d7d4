package envtest

import (
	"encoding/json"
	"testing"
)

// F3 of an attacker review, with the real kubectl: the original-images
// record says app:1, but the Deployment's image is a digest the user wrote
// in an admission the webhook never saw (here, before the namespace opted
// in; under failurePolicy: Ignore, while the webhook was down). Opting it
// out by kubectl label or kubectl annotate alone keeps that image: only the
// webhook's own pin of the record's entry gives way to the image as written.
func TestKubectlLabelOrAnnotateAddingAnOptOutKeepsADigestTheUserWroteUnderAStaleRecord(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		add  []string // kubectl arguments after the object
	}{
		{"kubectl label image-pin.io/skip=true", []string{"label", "image-pin.io/skip=true"}},
		{"kubectl annotate image-pin.io/strategy=skip", []string{"annotate", "image-pin.io/strategy=skip"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ns := namespace(t, false)
			name := uniq("app")
			image := s.plain.Host + "/" + name + ":1"
			push(t, s.plain, name+":1")
			users := image + "@" + push(t, s.plain, name+":a-build-the-user-chose")
			rec, err := json.Marshal(map[string]string{"app": image})
			if err != nil {
				t.Fatal(err)
			}
			stale := manifest{Namespace: ns, Image: users}.annotated(t, map[string]string{"image-pin.io/original-images": string(rec)})
			kubectlOK(t, "apply", "-f", stale)
			waitSettledOn(t, ns, users, []string{users}, 2)
			optIn(t, ns)

			kubectlOK(t, tc.add[0], "-n", ns, "deployment/web", tc.add[1])
			waitSettledOn(t, ns, users, []string{users}, 2)
		})
	}
}
