package webhook

import (
	"fmt"
	"strings"
)

// Kind is one kind the webhook admits: its group, version and name, and
// where it carries its pod spec.
type Kind struct {
	Group, Version, Kind string
	// PodSpec is the path of the pod spec in the object, e.g.
	// [spec template spec].
	PodSpec []string
	// templateOf names the controller whose template an object of this
	// kind takes its pod spec from when that controller owns it: the
	// owner's controller would replace a changed one forever.
	templateOf string
	// makesPods says whether the kind's controller makes Pods from its
	// template, which the webhook admitted with the template.
	makesPods bool
	decode    func(raw []byte) (*object, error)
}

// kinds is the table of supported kinds, in the contract's order: the
// handler decodes by it, the metrics label by it, the CLI finds pod specs
// in manifests by it. Read-only.
var kinds = [...]Kind{
	{Version: "v1", Kind: "Pod", PodSpec: []string{"spec"}, decode: decodePod},
	{Group: "apps", Version: "v1", Kind: "Deployment", PodSpec: templatePath, decode: decodeTemplated},
	{Group: "apps", Version: "v1", Kind: "StatefulSet", PodSpec: templatePath, makesPods: true, decode: decodeTemplated},
	{Group: "apps", Version: "v1", Kind: "DaemonSet", PodSpec: templatePath, makesPods: true, decode: decodeTemplated},
	{Group: "apps", Version: "v1", Kind: "ReplicaSet", PodSpec: templatePath, templateOf: "Deployment", makesPods: true, decode: decodeTemplated},
	{Version: "v1", Kind: "ReplicationController", PodSpec: templatePath, makesPods: true, decode: decodeTemplated},
	{Group: "batch", Version: "v1", Kind: "Job", PodSpec: templatePath, templateOf: "CronJob", makesPods: true, decode: decodeTemplated},
	{Group: "batch", Version: "v1", Kind: "CronJob", PodSpec: []string{"spec", "jobTemplate", "spec", "template", "spec"}, decode: decodeCronJob},
	{Version: "v1", Kind: "PodTemplate", PodSpec: []string{"template", "spec"}, decode: decodePodTemplate},
}

var templatePath = []string{"spec", "template", "spec"}

// Kinds lists the supported kinds, in the contract's order.
func Kinds() []Kind {
	out := make([]Kind, len(kinds))
	for i, k := range kinds {
		k.PodSpec = append([]string(nil), k.PodSpec...)
		out[i] = k
	}
	return out
}

// kindOf finds a supported kind by group, version and name.
func kindOf(group, version, kind string) (*Kind, bool) {
	for i := range kinds {
		if k := &kinds[i]; k.Kind == kind && k.Group == group && k.Version == version {
			return k, true
		}
	}
	return nil, false
}

// supportedKind reports whether name is a supported kind's name, in any
// group: a metric label is the name alone.
func supportedKind(name string) bool {
	for _, k := range kinds {
		if k.Kind == name {
			return true
		}
	}
	return false
}

// specPointer is the JSON pointer of the kind's pod spec.
func (k *Kind) specPointer() string { return "/" + strings.Join(k.PodSpec, "/") }

// decode reads raw as the kind the AdmissionReview names.
func decode(group, version, kind string, raw []byte) (*object, error) {
	if len(raw) == 0 {
		return nil, fmt.Errorf("the request carries no object")
	}
	k, ok := kindOf(group, version, kind)
	if !ok {
		return nil, unsupportedKind{group + "/" + version + "/" + kind}
	}
	o, err := k.decode(raw)
	if err != nil {
		return nil, fmt.Errorf("the object is not a valid %s: %v", kind, err)
	}
	o.kind = k
	return o, nil
}

// unsupportedKind is a kind the webhook does not handle: sent by a webhook
// configuration that asks for more than the chart's. Such objects are
// admitted unchanged with a warning rather than blocked.
type unsupportedKind struct{ gvk string }

func (u unsupportedKind) Error() string {
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = k.Kind
	}
	return fmt.Sprintf("kind %s is not supported (%s; core, apps and batch v1)", u.gvk, strings.Join(names, ", "))
}
