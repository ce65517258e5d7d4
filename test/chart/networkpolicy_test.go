package chart_test

import (
	"slices"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func netpol(enabled bool, apiServer map[string]any) map[string]any {
	return map[string]any{"networkPolicy": map[string]any{"enabled": enabled, "apiServer": apiServer}}
}

// Off by default, as Kyverno's chart: a NetworkPolicy that does not admit
// the API server makes every admission wait timeoutSeconds and pass
// unpinned, with no error anywhere. When on, the chart never guesses where
// the API server comes from.
func TestTheNetworkPolicyIsOffByDefaultAndNeverGuessesTheAPIServer(t *testing.T) {
	if nps := all[*networkingv1.NetworkPolicy](render(t, nil)); len(nps) != 0 {
		t.Errorf("%d NetworkPolicies by default", len(nps))
	}
	for name, values := range map[string]map[string]any{
		"enabled with nothing named":  netpol(true, nil),
		"enabled with empty sources":  netpol(true, map[string]any{"cidrs": []any{}, "peers": []any{}, "ciliumEntities": []any{}}),
		"the old apiServerCIDRs name": {"networkPolicy": map[string]any{"enabled": true, "apiServerCIDRs": []any{"0.0.0.0/0"}}},
	} {
		err := renderErr(t, values)
		if err == nil || !strings.Contains(err.Error(), "networkPolicy.apiServer") {
			t.Errorf("%s: %v, want a refusal naming networkPolicy.apiServer", name, err)
		}
	}
}

func TestTheAPIServerIsAdmittedFromWhatTheUserNames(t *testing.T) {
	peer := map[string]any{"namespaceSelector": map[string]any{"matchLabels": map[string]any{"kubernetes.io/metadata.name": "kube-system"}},
		"podSelector": map[string]any{"matchLabels": map[string]any{"component": "kube-apiserver"}}}
	objs := render(t, netpol(true, map[string]any{"cidrs": []any{"172.18.0.0/24"}, "peers": []any{peer}}))
	np := find[*networkingv1.NetworkPolicy](t, objs, "")
	adm := np.Spec.Ingress[0]
	var ports []int
	for _, p := range adm.Ports {
		ports = append(ports, p.Port.IntValue())
	}
	if !slices.Equal(ports, []int{9443, 8081}) || len(adm.From) != 2 {
		t.Fatalf("admission rule %+v", adm)
	}
	if adm.From[0].IPBlock == nil || adm.From[0].IPBlock.CIDR != "172.18.0.0/24" || len(adm.From[0].IPBlock.Except) != 0 {
		t.Errorf("first peer %+v", adm.From[0])
	}
	if adm.From[1].PodSelector == nil || adm.From[1].PodSelector.MatchLabels["component"] != "kube-apiserver" {
		t.Errorf("the peer as written is not kept: %+v", adm.From[1])
	}
	for _, o := range objs {
		if u, ok := o.(*unstructured.Unstructured); ok {
			t.Errorf("%s rendered without ciliumEntities", u.GetKind())
		}
	}
}

// On Cilium, ipBlock does not match the host or remote-node identities the
// API server comes from (cilium/cilium#20550): ciliumEntities admits it by
// entity; the NetworkPolicy beside it keeps only the metrics rule.
func TestCiliumEntitiesRenderACiliumNetworkPolicy(t *testing.T) {
	objs := render(t, netpol(true, map[string]any{"ciliumEntities": []any{"kube-apiserver", "remote-node", "host"}}))
	var cnp *unstructured.Unstructured
	for _, o := range objs {
		if u, ok := o.(*unstructured.Unstructured); ok && u.GetKind() == "CiliumNetworkPolicy" {
			cnp = u
		}
	}
	if cnp == nil || cnp.GetAPIVersion() != "cilium.io/v2" {
		t.Fatal("no cilium.io/v2 CiliumNetworkPolicy rendered")
	}
	sel, _, _ := unstructured.NestedStringMap(cnp.Object, "spec", "endpointSelector", "matchLabels")
	if sel["app.kubernetes.io/name"] != "image-pin-webhook" || sel["app.kubernetes.io/instance"] != "image-pin-webhook" {
		t.Errorf("endpointSelector %v", sel)
	}
	ingress, _, _ := unstructured.NestedSlice(cnp.Object, "spec", "ingress")
	if len(ingress) != 1 {
		t.Fatalf("ingress %v", ingress)
	}
	rule := ingress[0].(map[string]any)
	entities, _, _ := unstructured.NestedStringSlice(rule, "fromEntities")
	if !slices.Equal(entities, []string{"kube-apiserver", "remote-node", "host"}) {
		t.Errorf("fromEntities %v", entities)
	}
	toPorts, _, _ := unstructured.NestedSlice(rule, "toPorts")
	ports, _, _ := unstructured.NestedSlice(toPorts[0].(map[string]any), "ports")
	if p := ports[0].(map[string]any); p["port"] != "9443" || p["protocol"] != "TCP" {
		t.Errorf("ports %v", ports)
	}
	np := find[*networkingv1.NetworkPolicy](t, objs, "")
	if len(np.Spec.Ingress) != 1 || np.Spec.Ingress[0].Ports[0].Port.IntValue() != 8080 {
		t.Errorf("the NetworkPolicy beside it: %+v, want only the metrics rule", np.Spec.Ingress)
	}
}

func TestTheNotesSayWhenTheAdmissionPortIsOpen(t *testing.T) {
	if n := renderRelease(t, nil).Notes; !strings.Contains(n, "not behind a NetworkPolicy") {
		t.Errorf("notes:\n%s", n)
	}
	if n := renderRelease(t, netpol(true, map[string]any{"cidrs": []any{"0.0.0.0/0"}})).Notes; !strings.Contains(n, "networkPolicy.podCIDRs is empty") {
		t.Errorf("notes:\n%s", n)
	}
}
