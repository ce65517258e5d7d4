package webhook

import (
	"encoding/json"
	"fmt"
	"maps"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// object is a decoded admitted object: its metadata and the pod spec it
// carries, with the JSON pointer of that pod spec.
type object struct {
	meta     *metav1.ObjectMeta
	tmplMeta *metav1.ObjectMeta // the pod template's metadata; nil for a Pod
	spec     *corev1.PodSpec    // nil when the object carries none (an RC without template)
	specPath string
}

// decode reads raw as the kind the AdmissionReview names.
func decode(group, version, kind string, raw []byte) (*object, error) {
	if len(raw) == 0 {
		return nil, fmt.Errorf("the request carries no object")
	}
	gvk := group + "/" + version + "/" + kind
	d, ok := kinds[gvk]
	if !ok {
		return nil, unsupportedKind{gvk}
	}
	return d(kind, raw)
}

// decoder reads one kind's raw object.
type decoder func(kind string, raw []byte) (*object, error)

// kinds are the kinds the webhook admits, by group/version/kind, and where
// each carries its pod spec. Read-only.
var kinds = map[string]decoder{
	"/v1/Pod": as(func(o *corev1.Pod) *object {
		return &object{meta: &o.ObjectMeta, spec: &o.Spec, specPath: "/spec"}
	}),
	"/v1/PodTemplate": as(func(o *corev1.PodTemplate) *object {
		return &object{meta: &o.ObjectMeta, tmplMeta: &o.Template.ObjectMeta, spec: &o.Template.Spec, specPath: "/template/spec"}
	}),
	"/v1/ReplicationController": as(func(o *corev1.ReplicationController) *object {
		if o.Spec.Template == nil {
			return &object{meta: &o.ObjectMeta}
		}
		return templated(&o.ObjectMeta, o.Spec.Template)
	}),
	"apps/v1/Deployment":  as(func(o *appsv1.Deployment) *object { return templated(&o.ObjectMeta, &o.Spec.Template) }),
	"apps/v1/StatefulSet": as(func(o *appsv1.StatefulSet) *object { return templated(&o.ObjectMeta, &o.Spec.Template) }),
	"apps/v1/DaemonSet":   as(func(o *appsv1.DaemonSet) *object { return templated(&o.ObjectMeta, &o.Spec.Template) }),
	"apps/v1/ReplicaSet":  as(func(o *appsv1.ReplicaSet) *object { return templated(&o.ObjectMeta, &o.Spec.Template) }),
	"batch/v1/Job":        as(func(o *batchv1.Job) *object { return templated(&o.ObjectMeta, &o.Spec.Template) }),
	"batch/v1/CronJob": as(func(o *batchv1.CronJob) *object {
		t := &o.Spec.JobTemplate.Spec.Template
		return &object{meta: &o.ObjectMeta, tmplMeta: &t.ObjectMeta, spec: &t.Spec, specPath: "/spec/jobTemplate/spec/template/spec"}
	}),
}

// as decodes raw as a T, then finds what it carries with carried.
func as[T any](carried func(*T) *object) decoder {
	return func(kind string, raw []byte) (*object, error) {
		var o T
		if err := json.Unmarshal(raw, &o); err != nil {
			return nil, fmt.Errorf("the object is not a valid %s: %v", kind, err)
		}
		return carried(&o), nil
	}
}

// unsupportedKind is a kind the webhook does not handle: sent by a webhook
// configuration that asks for more than the chart's. Such objects are
// admitted unchanged with a warning rather than blocked.
type unsupportedKind struct{ gvk string }

func (u unsupportedKind) Error() string {
	return fmt.Sprintf("kind %s is not supported (Pod, PodTemplate, ReplicationController, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob; core, apps and batch v1)", u.gvk)
}

// templated is an object whose pod template is at spec.template.
func templated(meta *metav1.ObjectMeta, t *corev1.PodTemplateSpec) *object {
	return &object{meta: meta, tmplMeta: &t.ObjectMeta, spec: &t.Spec, specPath: "/spec/template/spec"}
}

// container is one image-carrying container of a pod spec.
type container struct {
	name      string
	image     string
	path      string // JSON pointer of its image field
	ephemeral bool
}

// containers lists every container, init container and ephemeral container.
func (o *object) containers() []container {
	if o.spec == nil {
		return nil
	}
	s := o.spec
	out := make([]container, 0, len(s.InitContainers)+len(s.Containers)+len(s.EphemeralContainers))
	for i, c := range s.InitContainers {
		out = append(out, container{c.Name, c.Image, o.specPath + "/initContainers/" + strconv.Itoa(i) + "/image", false})
	}
	for i, c := range s.Containers {
		out = append(out, container{c.Name, c.Image, o.specPath + "/containers/" + strconv.Itoa(i) + "/image", false})
	}
	for i, c := range s.EphemeralContainers {
		out = append(out, container{c.Name, c.Image, o.specPath + "/ephemeralContainers/" + strconv.Itoa(i) + "/image", true})
	}
	return out
}

// ownedBy reports whether the object's controller is of kind.
func (o *object) ownedBy(kind string) bool {
	for _, r := range o.meta.OwnerReferences {
		if r.Kind == kind && r.Controller != nil && *r.Controller {
			return true
		}
	}
	return false
}

// templateKinds are the controllers whose pod template the webhook admits,
// by API group.
var templateKinds = map[string]bool{
	"apps/ReplicaSet": true, "apps/StatefulSet": true, "apps/DaemonSet": true,
	"batch/Job": true, "/ReplicationController": true,
}

// templateOwner names the controller of a Pod when it is a kind whose pod
// template the webhook admits, else "". Such a Pod runs what the template
// says: the webhook decided that template (or left it alone) when it was
// admitted.
func (o *object) templateOwner() string {
	for _, r := range o.meta.OwnerReferences {
		if r.Controller == nil || !*r.Controller {
			continue
		}
		group, _, _ := strings.Cut(r.APIVersion, "/")
		if !strings.Contains(r.APIVersion, "/") {
			group = ""
		}
		if templateKinds[group+"/"+r.Kind] {
			return r.Kind
		}
	}
	return ""
}

// touchesImages reports whether an UPDATE changes an image, the set of
// containers, or an image-pin.io/ annotation other than the record.
func touchesImages(old, cur *object) bool {
	oc, cc := old.containers(), cur.containers()
	if len(oc) != len(cc) {
		return true
	}
	for i := range oc {
		if oc[i].name != cc[i].name || oc[i].image != cc[i].image {
			return true
		}
	}
	steering := func(ann map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range ann {
			if strings.HasPrefix(k, domain) && k != OriginalImagesKey {
				m[k] = v
			}
		}
		return m
	}
	return !maps.Equal(steering(old.meta.Annotations), steering(cur.meta.Annotations))
}
