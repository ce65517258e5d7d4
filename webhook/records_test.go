package webhook_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/image-pin/image-pin-webhook/config"
	"github.com/image-pin/image-pin-webhook/resolver"
	"github.com/image-pin/image-pin-webhook/webhook"
)

// withRestart sets the pod template's restartedAt as kubectl rollout restart does.
func withRestart(d *appsv1.Deployment, ts string) *appsv1.Deployment {
	d.Spec.Template.Annotations = map[string]string{"kubectl.kubernetes.io/restartedAt": ts}
	return d
}

func recorded(kv ...string) map[string]string {
	return map[string]string{webhook.OriginalImagesKey: originals(kv...)}
}

const recordPath = "/metadata/annotations/image-pin.io~1original-images"

// The record must describe the image stored after every admission, whatever
// the webhook did with it: the sequences of issue 11, one admission each, with
// the old object as the API server holds it.
func TestTheOriginalImagesRecordAlwaysDescribesTheStoredImage(t *testing.T) {
	e := newEnv(t)
	host := e.srv.Host
	app, api := host+"/app:1", host+"/api:1.5.0"
	appPinned, apiPinned := app+"@"+e.digests["app:1"], api+"@"+e.digests["api:1.5.0"]
	apiWritten := host + "/api:1.4.0@" + e.digests["api:1.4.0"]
	other := "quay.io/other/thing:2"
	const before, later = "2026-11-25T10:00:00Z", "2026-11-26T10:00:00Z"
	image := func(p string) op { return op{"replace", "/spec/template/spec/containers/0/image", p} }
	record := func(kv ...string) op { return op{"replace", recordPath, originals(kv...)} }
	tests := []struct {
		name     string
		obj, old *appsv1.Deployment
		want     []op
	}{
		{"set image to an unconfigured registry records the new image",
			deployment(recorded("app", app), other), deployment(recorded("app", app), appPinned),
			[]op{record("app", other)}},
		{"a restart after it keeps the unconfigured image although an old record names another",
			withRestart(deployment(recorded("app", app), other), later), withRestart(deployment(recorded("app", app), other), before),
			[]op{record("app", other)}},
		{"set image to a digest the user wrote records it as written",
			deployment(recorded("app", app), apiWritten), deployment(recorded("app", app), appPinned),
			[]op{record("app", apiWritten)}},
		{"a re-apply after a stale record does not bring back another repository",
			deployment(recorded("app", app), app), deployment(recorded("app", app), apiWritten),
			[]op{image(appPinned)}},
		{"a restart of an image left unpinned pins that image, not an older record's",
			withRestart(deployment(recorded("app", app), api), later), withRestart(deployment(recorded("app", app), api), before),
			[]op{image(apiPinned), record("app", api)}},
		{"a container changed to skip records what was written",
			deployment(map[string]string{webhook.OriginalImagesKey: originals("app", app), "image-pin.io/strategy.app": "skip"}, api),
			deployment(recorded("app", app), appPinned),
			[]op{record("app", api)}},
		{"a removed container loses its entry",
			deployment(recorded("app", app, "side", api), appPinned), deployment(recorded("app", app, "side", api), appPinned, apiPinned),
			[]op{record("app", app)}},
		{"an unpinned image gets an entry too",
			deployment(nil, other), deployment(nil, other),
			[]op{{"add", "/metadata/annotations", map[string]any{webhook.OriginalImagesKey: originals("app", other)}}}},
		{"a rollout undo records the pinned image it brings back",
			withRestart(deployment(recorded("app", api), apiWritten), before), withRestart(deployment(recorded("app", api), apiPinned), later),
			[]op{record("app", apiWritten)}},
		{"a rollout undo within the same tag keeps the record",
			withRestart(deployment(recorded("app", app), appPinned), before), withRestart(deployment(recorded("app", app), app+"@sha256:"+strings.Repeat("a", 64)), later),
			nil},
		{"a second call after the webhook pinned (reinvocation) keeps the record it wrote",
			deployment(recorded("app", api), apiPinned), deployment(recorded("app", app), appPinned), nil},
		{"a second call after a restart (reinvocation) keeps the record",
			withRestart(deployment(recorded("app", app), appPinned), later), withRestart(deployment(recorded("app", app), app+"@sha256:"+strings.Repeat("b", 64)), before), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assertPatch(t, e.admit(t, review(t, admissionv1.Update, "team-a", tc.obj, tc.old)), tc.want)
		})
	}
}

func TestARecordOnCreateIsKeptOnlyWhenItDescribesTheImage(t *testing.T) {
	e := newEnv(t)
	host := e.srv.Host
	app := host + "/app:1"
	appPinned := app + "@" + e.digests["app:1"]
	t.Run("the webhook's own output called again", func(t *testing.T) {
		assertPatch(t, e.admit(t, review(t, admissionv1.Create, "team-a", deployment(recorded("app", app), appPinned), nil)), nil)
	})
	t.Run("a copied object whose record names another repository", func(t *testing.T) {
		written := host + "/api:1.4.0@" + e.digests["api:1.4.0"]
		assertPatch(t, e.admit(t, review(t, admissionv1.Create, "team-a", deployment(recorded("app", app), written), nil)),
			[]op{{"replace", recordPath, originals("app", written)}})
	})
}

func TestARestartPinsAnImageNeverPinned(t *testing.T) {
	e := newEnv(t)
	app := e.srv.Host + "/app:1"
	// Left unpinned at CREATE (the registry failed under on_error: ignore), so
	// the object carries no record.
	obj := withRestart(deployment(nil, app), "2026-11-26T10:00:00Z")
	old := deployment(nil, app)
	assertPatch(t, e.admit(t, review(t, admissionv1.Update, "team-a", obj, old)), []op{
		{"replace", "/spec/template/spec/containers/0/image", app + "@" + e.digests["app:1"]},
		{"add", "/metadata/annotations", map[string]any{webhook.OriginalImagesKey: originals("app", app)}},
	})
}

func TestAFailedLookupRecordsTheImageLeftAsWritten(t *testing.T) {
	e := newEnv(t)
	host := e.srv.Host
	app, api := host+"/app:1", host+"/api:1.5.0"
	e.srv.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return true
	})
	r := e.admit(t, review(t, admissionv1.Update, "team-a", deployment(recorded("app", app), api), deployment(recorded("app", app), app+"@"+e.digests["app:1"])))
	assertPatch(t, r, []op{{"replace", recordPath, originals("app", api)}})
}

func TestAReApplyThatAddsSkipLeavesTheImageAsWritten(t *testing.T) {
	e := newEnv(t)
	app := e.srv.Host + "/app:1"
	pinned := app + "@" + e.digests["app:1"]
	tests := []struct {
		name string
		ann  map[string]string
	}{
		{"per container", map[string]string{"image-pin.io/strategy.app": "skip"}},
		{"for the object", map[string]string{"image-pin.io/strategy": "skip"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.ann[webhook.OriginalImagesKey] = originals("app", app)
			assertPatch(t, e.admit(t, review(t, admissionv1.Update, "team-a", deployment(tc.ann, app), deployment(recorded("app", app), pinned))), nil)
		})
	}
}

func TestAReApplyThatChangesTheConstraintResolvesAnew(t *testing.T) {
	e := newEnv(t)
	api := e.srv.Host + "/api"
	old := deployment(map[string]string{webhook.OriginalImagesKey: originals("app", api), "image-pin.io/constraint": "~1.4"}, api+":v1.4.7@"+e.digests["api:v1.4.7"])
	obj := deployment(map[string]string{webhook.OriginalImagesKey: originals("app", api), "image-pin.io/constraint": "~1.5"}, api)
	assertPatch(t, e.admit(t, review(t, admissionv1.Update, "team-a", obj, old)), []op{
		{"replace", "/spec/template/spec/containers/0/image", api + ":1.5.0@" + e.digests["api:1.5.0"]},
	})
}

// A restart while the registry fails must not roll the image back to an older
// digest this replica happens to remember (another replica may have pinned a
// newer one): the stored pin of the same original stays.
func TestARestartDuringAnOutageKeepsTheStoredPin(t *testing.T) {
	e := newEnv(t, withPolicy("policy:\n  on_error: ignore\n  cache_ttl: 0s\n"))
	app := e.srv.Host + "/app:1"
	e.admit(t, review(t, admissionv1.Create, "team-a", deployment(nil, app), nil)) // remembers app:1's digest
	newer := e.srv.PushImage(t, "app:1")
	e.srv.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return true
	})
	stored := deployment(recorded("app", app), app+"@"+newer)
	r := e.admit(t, review(t, admissionv1.Update, "team-a", withRestart(stored.DeepCopy(), "2026-11-26T10:00:00Z"), stored))
	assertPatch(t, r, nil)
	if !strings.Contains(strings.Join(r.Warnings, "\n"), "503") {
		t.Errorf("warnings %q do not report the failure", r.Warnings)
	}
}

// Removing an opt-out is the user asking for a pin: the image is unchanged
// from the stored one only because the opt-out left it as written.
func TestAReApplyThatRemovesAnOptOutPins(t *testing.T) {
	e := newEnv(t)
	app := e.srv.Host + "/app:1"
	pin := []op{{"replace", "/spec/template/spec/containers/0/image", app + "@" + e.digests["app:1"]}}
	skipLabelled := func(d *appsv1.Deployment) *appsv1.Deployment {
		d.Labels = map[string]string{webhook.SkipLabel: "true"}
		return d
	}
	tests := []struct {
		name     string
		old, obj *appsv1.Deployment
		want     []op
	}{
		{"the object's strategy: skip annotation removed",
			deployment(map[string]string{webhook.OriginalImagesKey: originals("app", app), "image-pin.io/strategy": "skip"}, app),
			deployment(recorded("app", app), app), pin},
		{"the container's strategy: skip annotation removed",
			deployment(map[string]string{webhook.OriginalImagesKey: originals("app", app), "image-pin.io/strategy.app": "skip"}, app),
			deployment(recorded("app", app), app), pin},
		{"the skip label removed",
			skipLabelled(deployment(nil, app)),
			deployment(nil, app), append(pin, op{"add", "/metadata/annotations", map[string]any{webhook.OriginalImagesKey: originals("app", app)}})},
		{"an annotation kept at skip still leaves it as written",
			deployment(map[string]string{webhook.OriginalImagesKey: originals("app", app), "image-pin.io/strategy": "skip"}, app),
			deployment(map[string]string{webhook.OriginalImagesKey: originals("app", app), "image-pin.io/strategy": "skip"}, app), nil},
		{"any steering change on an image left as written resolves it anew",
			deployment(map[string]string{webhook.OriginalImagesKey: originals("app", app), "image-pin.io/allow-tags": "regexp:^1$"}, app),
			deployment(map[string]string{webhook.OriginalImagesKey: originals("app", app)}, app), pin},
		{"an unchanged image under unchanged steering starts no rollout",
			deployment(map[string]string{webhook.OriginalImagesKey: originals("app", app)}, app),
			deployment(map[string]string{webhook.OriginalImagesKey: originals("app", app)}, app), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assertPatch(t, e.admit(t, review(t, admissionv1.Update, "team-a", tc.obj, tc.old)), tc.want)
		})
	}
}

// Adding an opt-out is the user asking for the image as written, with the
// image unchanged as kubectl label and kubectl annotate send it: the
// written image comes back from the record, as a re-apply with skip does,
// where the stored image is the webhook's pin of it.
func TestAnOptOutAddedAloneRestoresTheWrittenImage(t *testing.T) {
	e := newEnv(t)
	app := e.srv.Host + "/app:1"
	pinned := app + "@" + e.digests["app:1"]
	// The webhook made the pin (its answer is in memory, as when it pinned
	// the object): that is what the restore checks, without a request.
	e.admit(t, review(t, admissionv1.Create, "team-a", deployment(nil, app), nil))
	restore := []op{{"replace", "/spec/template/spec/containers/0/image", app}}
	labelled := func(d *appsv1.Deployment, v string) *appsv1.Deployment {
		d.Labels = map[string]string{webhook.SkipLabel: v}
		return d
	}
	withAnn := func(kv ...string) map[string]string {
		m := recorded("app", app)
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name     string
		old, obj *appsv1.Deployment
		want     []op
	}{
		{"kubectl label image-pin.io/skip=true",
			deployment(recorded("app", app), pinned), labelled(deployment(recorded("app", app), pinned), "true"), restore},
		{"kubectl annotate image-pin.io/strategy=skip",
			deployment(recorded("app", app), pinned), deployment(withAnn("image-pin.io/strategy", "skip"), pinned), restore},
		{"kubectl annotate image-pin.io/strategy.app=skip",
			deployment(recorded("app", app), pinned), deployment(withAnn("image-pin.io/strategy.app", "skip"), pinned), restore},
		{"a label already there leaves the object alone",
			labelled(deployment(recorded("app", app), pinned), "true"), labelled(deployment(recorded("app", app), pinned), "true"), nil},
		{"an annotation already there leaves the object alone",
			deployment(withAnn("image-pin.io/strategy", "skip"), pinned), deployment(withAnn("image-pin.io/strategy", "skip"), pinned), nil},
		{"another container's skip leaves this one pinned",
			deployment(recorded("app", app), pinned), deployment(withAnn("image-pin.io/strategy.other", "skip"), pinned), nil},
		{"without a record there is nothing to restore",
			deployment(nil, pinned), labelled(deployment(nil, pinned), "true"), nil},
		{"a label other than true is no opt-out",
			deployment(recorded("app", app), pinned), labelled(deployment(recorded("app", app), pinned), "false"), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.srv.Reset()
			assertPatch(t, e.admit(t, review(t, admissionv1.Update, "team-a", tc.obj, tc.old)), tc.want)
			if n := e.srv.Total(); n != 0 {
				t.Errorf("%d registry requests, want none", n)
			}
		})
	}
}

func TestAnOptOutAddedInReportModeChangesNothing(t *testing.T) {
	e := newEnv(t, withPolicy("policy:\n  mode: report\n"))
	app := e.srv.Host + "/app:1"
	pinned := app + "@" + e.digests["app:1"]
	obj := deployment(recorded("app", app), pinned)
	obj.Labels = map[string]string{webhook.SkipLabel: "true"}
	assertPatch(t, e.admit(t, review(t, admissionv1.Update, "team-a", obj, deployment(recorded("app", app), pinned))), nil)
}

// F3 of an attacker review: an added opt-out brings back the record's entry
// only where the stored image is the webhook's own pin of it. A record left
// stale (an admission the webhook missed, under failurePolicy: Ignore, set
// a digest the user chose) or forged names a floating tag the user no
// longer asks for; the stored image is then what the user last wrote, and
// stays. The webhook's answer for the entry is what no record can forge.
func TestAnOptOutAddedRestoresOnlyTheWebhooksOwnPin(t *testing.T) {
	e := newEnv(t)
	app := e.srv.Host + "/app:1"
	pinned := app + "@" + e.digests["app:1"]
	// The webhook pins app:1 once, as it did when the object was created.
	e.admit(t, review(t, admissionv1.Create, "team-a", deployment(nil, app), nil))
	users := app + "@" + e.srv.PushImage(t, "app:a-build-the-user-chose")
	labelled := func(d *appsv1.Deployment) *appsv1.Deployment {
		d.Labels = map[string]string{webhook.SkipLabel: "true"}
		return d
	}
	annotated := func(stored string) *appsv1.Deployment {
		return deployment(map[string]string{webhook.OriginalImagesKey: originals("app", app), "image-pin.io/strategy": "skip"}, stored)
	}
	tests := []struct {
		name     string
		old, obj *appsv1.Deployment
		want     []op
		warns    bool
	}{
		{"kubectl label keeps a digest the user wrote under a stale record",
			deployment(recorded("app", app), users), labelled(deployment(recorded("app", app), users)), nil, true},
		{"kubectl annotate keeps it too, and records it as written",
			deployment(recorded("app", app), users), annotated(users), []op{{"replace", recordPath, originals("app", users)}}, true},
		{"kubectl label restores the webhook's own pin",
			deployment(recorded("app", app), pinned), labelled(deployment(recorded("app", app), pinned)),
			[]op{{"replace", "/spec/template/spec/containers/0/image", app}}, false},
		{"kubectl annotate restores the webhook's own pin",
			deployment(recorded("app", app), pinned), annotated(pinned),
			[]op{{"replace", "/spec/template/spec/containers/0/image", app}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.admit(t, review(t, admissionv1.Update, "team-a", tc.obj, tc.old))
			assertPatch(t, r, tc.want)
			warned := strings.Contains(strings.Join(r.Warnings, "\n"), "not the webhook's pin")
			if warned != tc.warns {
				t.Errorf("warnings %q: want one saying the stored image is not the webhook's pin: %v", r.Warnings, tc.warns)
			}
		})
	}
}

// When the webhook cannot tell (it gave no answer it remembers, and the
// registry's is another digest or none), the image stays as stored: an
// opt-out never swaps a digest for a tag on a guess. The last known answer
// still counts as the webhook's own.
func TestAnOptOutAddedKeepsTheStoredImageWhenTheWebhookCannotTell(t *testing.T) {
	app := "/app:1"
	down := func(w http.ResponseWriter, r *http.Request) bool {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return true
	}
	labelled := func(d *appsv1.Deployment) *appsv1.Deployment {
		d.Labels = map[string]string{webhook.SkipLabel: "true"}
		return d
	}
	t.Run("the tag moved since a pin the webhook has no memory of", func(t *testing.T) {
		e := newEnv(t)
		old := e.srv.Host + app + "@" + e.digests["app:1"]
		e.srv.PushImage(t, "app:1")
		rec := recorded("app", e.srv.Host+app)
		assertPatch(t, e.admit(t, review(t, admissionv1.Update, "team-a", labelled(deployment(rec, old)), deployment(rec, old))), nil)
	})
	t.Run("the registry down and nothing known", func(t *testing.T) {
		e := newEnv(t)
		e.srv.SetFault(down)
		pinned := e.srv.Host + app + "@" + e.digests["app:1"]
		rec := recorded("app", e.srv.Host+app)
		assertPatch(t, e.admit(t, review(t, admissionv1.Update, "team-a", labelled(deployment(rec, pinned)), deployment(rec, pinned))), nil)
	})
	t.Run("the registry down and the last known pin stored", func(t *testing.T) {
		e := newEnv(t, withPolicy("policy:\n  cache_ttl: 0s\n"))
		e.admit(t, review(t, admissionv1.Create, "team-a", deployment(nil, e.srv.Host+app), nil))
		e.srv.SetFault(down)
		pinned := e.srv.Host + app + "@" + e.digests["app:1"]
		rec := recorded("app", e.srv.Host+app)
		assertPatch(t, e.admit(t, review(t, admissionv1.Update, "team-a", labelled(deployment(rec, pinned)), deployment(rec, pinned))),
			[]op{{"replace", "/spec/template/spec/containers/0/image", e.srv.Host + app}})
	})
}

// movedEnv is an env whose app:1 the webhook pinned (old), then saw move
// (moved) through a rollout restart of another object: its answer is now
// moved, and old one it gave before.
func movedEnv(t *testing.T) (e *env, app, old, moved string) {
	t.Helper()
	e = newEnv(t)
	app = e.srv.Host + "/app:1"
	old = app + "@" + e.digests["app:1"]
	e.admit(t, review(t, admissionv1.Create, "team-a", deployment(nil, app), nil))
	movedDigest := e.srv.PushImage(t, "app:1")
	moved = app + "@" + movedDigest
	other := func(ts string) *appsv1.Deployment { return withRestart(deployment(recorded("app", app), old), ts) }
	r := e.admit(t, review(t, admissionv1.Update, "team-a", other("2026-11-26T10:00:00Z"), other("2026-11-25T10:00:00Z")))
	assertPatch(t, r, []op{{"replace", "/spec/template/spec/containers/0/image", moved}})
	return e, app, old, moved
}

// Gap 1 of F3's fix: after a refresh or a restart found the tag moved, the
// webhook's answer is the new digest, and its old pin is still its own: an
// opt-out added restores the image as written, from memory, without a
// registry request.
func TestAnOptOutAddedAfterTheTagMovedRestoresTheWrittenImage(t *testing.T) {
	e, app, old, _ := movedEnv(t)
	labelled := deployment(recorded("app", app), old)
	labelled.Labels = map[string]string{webhook.SkipLabel: "true"}
	annotated := deployment(map[string]string{webhook.OriginalImagesKey: originals("app", app), "image-pin.io/strategy": "skip"}, old)
	for _, tc := range []struct {
		name string
		obj  *appsv1.Deployment
	}{
		{"kubectl label", labelled},
		{"kubectl annotate", annotated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.srv.Reset()
			r := e.admit(t, review(t, admissionv1.Update, "team-a", tc.obj, deployment(recorded("app", app), old)))
			assertPatch(t, r, []op{{"replace", "/spec/template/spec/containers/0/image", app}})
			if len(r.Warnings) != 0 {
				t.Errorf("warnings %q, want none", r.Warnings)
			}
			if n := e.srv.Total(); n != 0 {
				t.Errorf("%d registry requests %v, want 0", n, e.srv.Received())
			}
		})
	}
}

// A re-apply of an unchanged manifest never starts a rollout for a digest
// the webhook gave: its current answer, or an older one of a tag that moved
// since. Told from memory, without a registry request.
func TestAReApplyKeepsEveryPinTheWebhookGaveWithoutARequest(t *testing.T) {
	e, app, old, moved := movedEnv(t)
	for _, tc := range []struct {
		name, stored string
	}{
		{"the tag moved since the pin: the old pin stays", old},
		{"the pin of the current answer stays", moved},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.srv.Reset()
			r := e.admit(t, review(t, admissionv1.Update, "team-a", deployment(nil, app), deployment(recorded("app", app), tc.stored)))
			assertPatch(t, r, []op{{"replace", "/spec/template/spec/containers/0/image", tc.stored},
				{"add", "/metadata/annotations", map[string]any{webhook.OriginalImagesKey: originals("app", app)}}})
			if len(r.Warnings) != 0 {
				t.Errorf("warnings %q, want none", r.Warnings)
			}
			if n := e.srv.Total(); n != 0 {
				t.Errorf("%d registry requests %v, want 0", n, e.srv.Received())
			}
		})
	}
}

// A re-apply whose stored pin the webhook does not know, with the registry
// down, keeps it with a warning, whatever on_error says: a failure never
// starts a rollout, nor denies a re-apply that needed no registry before.
func TestAReApplyTheWebhookCannotCheckKeepsTheStoredPin(t *testing.T) {
	e := newEnv(t, withPolicy("policy:\n  on_error: fail\n"))
	app := e.srv.Host + "/app:1"
	stored := app + "@" + e.digests["app:1"]
	e.srv.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return true
	})
	r := e.admit(t, review(t, admissionv1.Update, "team-a", deployment(recorded("app", app), app), deployment(recorded("app", app), stored)))
	assertPatch(t, r, []op{{"replace", "/spec/template/spec/containers/0/image", stored}})
	if w := strings.Join(r.Warnings, "\n"); !strings.Contains(w, "kept as stored for the re-apply") {
		t.Errorf("warnings %q, want one saying the stored pin was kept unchecked", r.Warnings)
	}
}

// historyStore is a resolver.Store that holds nothing but a record's
// history, as --state cluster's ImageResolution keeps status.history.
type historyStore struct{ gave map[string]bool }

func (historyStore) Load(context.Context, resolver.Query, string) (resolver.Stored, bool) {
	return resolver.Stored{}, false
}

func (historyStore) Save(_ context.Context, _ resolver.Query, _ string, _ *resolver.Stored, a resolver.Stored) (resolver.Stored, error) {
	return a, nil
}

func (h historyStore) Gave(_ context.Context, _ resolver.Query, _, tag, digest string) bool {
	return h.gave[tag+"@"+digest]
}

// With --state cluster, a pin another replica made (or this process before
// it restarted) is in the query's record: a re-apply keeps it without a
// registry request although this process never answered it.
func TestAReApplyKeepsAPinTheRecordsHistoryHolds(t *testing.T) {
	e := newEnv(t)
	app := e.srv.Host + "/app:1"
	older := e.srv.PushImage(t, "app:an-older-build")
	h := webhook.NewHandler(func() *config.Config { return e.cfg.Load() },
		resolver.New(resolver.WithStore(historyStore{gave: map[string]bool{"1@" + older: true}})), webhook.WithOwnNamespace("image-pin-system"))
	e.http = httptest.NewServer(&admission.Webhook{Handler: h})
	t.Cleanup(e.http.Close)
	e.srv.Reset()
	r := e.admit(t, review(t, admissionv1.Update, "team-a", deployment(recorded("app", app), app), deployment(recorded("app", app), app+"@"+older)))
	assertPatch(t, r, []op{{"replace", "/spec/template/spec/containers/0/image", app + "@" + older}})
	if n := e.srv.Total(); n != 0 {
		t.Errorf("%d registry requests %v, want 0", n, e.srv.Received())
	}
}
