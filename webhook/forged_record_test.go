package webhook_test

import (
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/image-pin/image-pin-webhook/webhook"
)

// The re-apply rule gives back the stored pin without asking the registry
// when the written image equals the old object's original-images entry. The
// record is an annotation anyone who can update the object can write, and
// describes() checks only that the stored image is the same repository and
// tag with some digest, not that the webhook chose that digest. So whoever
// once wrote the object (a compromised CI token, a user with edit on the
// namespace) can store app:1@<any digest of that repository> with a forged
// record {"app":"app:1"}, and every later re-apply of the real manifest
// (app:1, by GitOps or kubectl) keeps the forged digest, and a look at the
// record says it is app:1's pin: drift that re-applying no longer repairs.
// The re-apply keeps the stored pin only where the webhook answered the
// record's entry with it (Resolver.Gave); this one is looked up again.
func TestAForgedRecordDoesNotMakeReapplyKeepADigestTheWebhookNeverChose(t *testing.T) {
	e := newEnv(t)
	other := e.srv.PushImage(t, "app:other-build") // any digest in the same repository
	written := e.srv.Host + "/app:1"
	forged := deployment(map[string]string{webhook.OriginalImagesKey: originals("app", written)}, written+"@"+other)
	reapply := deployment(nil, written)
	r := e.admit(t, review(t, admissionv1.Update, "team-a", reapply, forged))
	want := e.pinned("REGISTRY/app:1", "app:1")
	for _, p := range patchOf(t, r) {
		if strings.HasSuffix(p.Path, "/image") {
			if p.Value != want {
				t.Fatalf("the re-apply of %s was pinned to %v, want %s (what the registry says)", written, p.Value, want)
			}
			if w := strings.Join(r.Warnings, "\n"); !strings.Contains(w, "not a digest the webhook gave") {
				t.Errorf("warnings %q, want one saying why the re-apply starts a rollout", r.Warnings)
			}
			return
		}
	}
	t.Fatalf("the re-apply of %s kept the forged digest %s (no image patch), want %s", written, other, want)
}
