package chart_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/image-pin/image-pin-webhook/webhook"
)

// Issue 22: the kinds the webhook admits are one table, webhook.Kinds().
// Every other list of them is checked against it here, so that a kind added
// to the table (or to a list) without the others fails: the chart's rules
// (a kind the API server never sends is silently never pinned; a rule for a
// kind the table lacks sends objects the webhook can only refuse) and the
// list in docs/configuration.md.
func TestEveryListOfKindsIsTheWebhooksTable(t *testing.T) {
	var want []string // group/version/resource, as the rules name them
	var names []string
	for _, k := range webhook.Kinds() {
		plural, _ := meta.UnsafeGuessKindToResource(schema.GroupVersionKind{Group: k.Group, Version: k.Version, Kind: k.Kind})
		want = append(want, k.Group+"/"+k.Version+"/"+plural.Resource)
		if k.Kind == "Pod" {
			// kubectl debug writes ephemeral containers through the subresource.
			want = append(want, k.Group+"/"+k.Version+"/"+plural.Resource+"/ephemeralcontainers")
		}
		names = append(names, k.Kind)
	}
	slices.Sort(want)

	t.Run("the chart's MutatingWebhookConfiguration rules", func(t *testing.T) {
		mwc := find[*admissionregistrationv1.MutatingWebhookConfiguration](t, render(t, nil), "")
		var got []string
		for _, w := range mwc.Webhooks {
			for _, r := range w.Rules {
				for _, g := range r.APIGroups {
					for _, v := range r.APIVersions {
						for _, res := range r.Resources {
							got = append(got, g+"/"+v+"/"+res)
						}
					}
				}
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("the chart's rules name\n  %v\nwebhook.Kinds() is\n  %v", got, want)
		}
	})

	t.Run("the list in docs/configuration.md", func(t *testing.T) {
		b, err := os.ReadFile("../../docs/configuration.md")
		if err != nil {
			t.Fatal(err)
		}
		// "- Kinds: Pod, Deployment, ..., PodTemplate; containers, ..." (wrapped).
		m := regexp.MustCompile(`(?s)\n- Kinds: ([^;]*);`).FindSubmatch(b)
		if m == nil {
			t.Fatal(`docs/configuration.md has no "- Kinds: ...;" line`)
		}
		var got []string
		for _, f := range strings.Split(string(m[1]), ",") {
			got = append(got, strings.TrimSpace(f))
		}
		if !slices.Equal(got, names) {
			t.Errorf("docs/configuration.md lists %v, webhook.Kinds() is %v (in its order)", got, names)
		}
	})
}
