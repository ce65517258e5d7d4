// Package chart renders charts/image-pin-webhook as `helm install --dry-run`
// does, hooks and notes included, for the chart tests and the docs
// examples test. The objects of CRDs that are not dependencies (Cilium's,
// the Prometheus Operator's) are kept as unstructured.
package chart

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/image-pin/image-pin-webhook/test/cluster"
)

// Release is one client-side render.
type Release struct {
	Manifest string          // what helm install applies, as text
	Objects  []client.Object // Manifest, decoded
	Hooks    []client.Object // hooks (helm test's Pod and its RBAC)
	Notes    string
}

// Render renders the chart with values checked against values.schema.json
// and decodes every object strictly (unknown fields fail).
func Render(release, namespace string, values map[string]any) (*Release, error) {
	rel, err := cluster.RenderRelease(release, namespace, values)
	if err != nil {
		return nil, err
	}
	out := &Release{Manifest: rel.Manifest, Notes: rel.Info.Notes}
	if out.Objects, err = decodeAll(rel.Manifest); err != nil {
		return nil, err
	}
	for _, h := range rel.Hooks {
		objs, err := decodeAll(h.Manifest)
		if err != nil {
			return nil, fmt.Errorf("hook %s: %w", h.Path, err)
		}
		out.Hooks = append(out.Hooks, objs...)
	}
	return out, nil
}

func decodeAll(manifest string) ([]client.Object, error) {
	var objs []client.Object
	scheme := cluster.Scheme()
	for _, doc := range strings.Split(manifest, "\n---") {
		doc = strings.TrimSpace(doc)
		if doc == "" || strings.Trim(doc, "-") == "" {
			continue
		}
		if u, ok, err := asUnstructured(doc); err != nil {
			return nil, err
		} else if ok {
			objs = append(objs, u)
			continue
		}
		obj, err := cluster.DecodeStrict(scheme, []byte(doc))
		if err != nil {
			return nil, err
		}
		objs = append(objs, obj)
	}
	return objs, nil
}

func asUnstructured(doc string) (*unstructured.Unstructured, bool, error) {
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
		return nil, false, err
	}
	if u.Object == nil {
		// A document of comments only.
		return nil, false, nil
	}
	// The API groups whose types are not a dependency.
	switch u.GroupVersionKind().Group {
	case "cilium.io", "monitoring.coreos.com":
		return u, true, nil
	}
	return nil, false, nil
}
