package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	pinhook "github.com/image-pin/image-pin-webhook/webhook"
)

// manifestWorkload reads, from a workload manifest (YAML or JSON, the first
// document), what its Pods present to imagepullsecrets entries: the pod
// spec's imagePullSecrets and serviceAccountName, and the namespace in its
// metadata ("" when it names none).
func manifestWorkload(path string) (namespace, serviceAccount string, pullSecrets []string, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", "", nil, err
	}
	j, err := yaml.YAMLToJSON(b)
	if err != nil {
		return "", "", nil, fmt.Errorf("%s: not YAML or JSON: %v", path, err)
	}
	var doc map[string]any
	if err := json.Unmarshal(j, &doc); err != nil || doc == nil {
		return "", "", nil, fmt.Errorf("%s: not a Kubernetes object", path)
	}
	if md, ok := doc["metadata"].(map[string]any); ok {
		namespace, _ = md["namespace"].(string)
	}
	kinds := pinhook.Kinds()
	for _, k := range kinds {
		raw, ok := dig(doc, k.PodSpec)
		if !ok {
			continue
		}
		var spec corev1.PodSpec
		b, _ := json.Marshal(raw)
		if json.Unmarshal(b, &spec) != nil || len(spec.Containers) == 0 {
			continue
		}
		for _, r := range spec.ImagePullSecrets {
			pullSecrets = append(pullSecrets, r.Name)
		}
		return namespace, spec.ServiceAccountName, pullSecrets, nil
	}
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = k.Kind
	}
	return "", "", nil, fmt.Errorf("%s: no pod spec with containers (a %s)", path, strings.Join(names, ", "))
}

func dig(m map[string]any, path []string) (any, bool) {
	var cur any = m
	for _, k := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = mm[k]; !ok {
			return nil, false
		}
	}
	return cur, true
}
