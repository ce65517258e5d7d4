package webhook_test

import (
	"context"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/image-pin/image-pin-webhook/config"
	"github.com/image-pin/image-pin-webhook/webhook"
)

// Decide hands out what the handler decided for each container as data,
// which the response, the logs and the CLI all read.
func TestEveryContainersDecisionIsHandedOutAsData(t *testing.T) {
	e := newEnv(t, withPolicy("policy:\n  on_error: ignore\n"))
	h := webhook.NewHandler(func() *config.Config { return e.cfg.Load() }, e.res)
	app, digested := e.srv.Host+"/app:1", e.srv.Host+"/debug:1@"+e.digests["debug:1"]
	d := deployment(map[string]string{"image-pin.io/strategy.third": "skip"}, app, digested, e.srv.Host+"/init:latest")
	d.Spec.Template.Spec.Containers = append(d.Spec.Template.Spec.Containers,
		container("missing", e.srv.Host+"/app:nosuchtag"), container("elsewhere", "example.org/x:1"))
	rv := h.Decide(context.Background(), request(t, review(t, admissionv1.Create, "team-a", d, nil)))
	want := []webhook.Decision{
		{Container: "app", Image: app, Written: app, Stored: e.pinned("REGISTRY/app:1", "app:1"), Pin: e.pinned("REGISTRY/app:1", "app:1"), Entry: "test", Outcome: webhook.Pinned},
		{Container: "side", Image: digested, Written: digested, Stored: digested, Outcome: webhook.Kept},
		{Container: "third", Image: e.srv.Host + "/init:latest", Written: e.srv.Host + "/init:latest", Stored: e.srv.Host + "/init:latest", Entry: "test", Outcome: webhook.Skipped},
		{Container: "missing", Image: e.srv.Host + "/app:nosuchtag", Written: e.srv.Host + "/app:nosuchtag", Stored: e.srv.Host + "/app:nosuchtag", Entry: "test", Outcome: webhook.Failed, OnError: config.OnErrorIgnore},
		{Container: "elsewhere", Image: "example.org/x:1", Written: "example.org/x:1", Stored: "example.org/x:1", Outcome: webhook.Skipped},
	}
	if len(rv.Decisions) != len(want) {
		t.Fatalf("%d decisions, want %d: %+v", len(rv.Decisions), len(want), rv.Decisions)
	}
	for i, w := range want {
		g := rv.Decisions[i]
		if g.Container != w.Container || g.Image != w.Image || g.Written != w.Written || g.Stored != w.Stored ||
			g.Pin != w.Pin || g.Entry != w.Entry || g.Outcome != w.Outcome || g.OnError != w.OnError {
			t.Errorf("decision %d\n got %+v\nwant %+v", i, g, w)
		}
		if (g.Err != nil) != (w.Outcome == webhook.Failed) {
			t.Errorf("%s: err %v for outcome %s", g.Container, g.Err, g.Outcome)
		}
		if (g.Outcome == webhook.Kept || g.Outcome == webhook.Skipped) && g.Reason == "" {
			t.Errorf("%s: %s without a reason", g.Container, g.Outcome)
		}
	}
}
