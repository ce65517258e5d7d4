package webhook

import (
	"encoding/json"
	"maps"
	"strconv"
	"strings"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// object is what the handler reads of an admitted object: its metadata and
// the pod spec it carries. Only these fields are decoded, not the whole
// typed object: a warm admission spends most of its time and allocations
// decoding JSON, and the rest of the object is the API server's to check.
type object struct {
	kind     *Kind
	meta     objectMeta
	tmplMeta *templateMeta // the pod template's metadata; nil for a Pod
	spec     *podSpec      // nil when the object carries none (an RC without template)
}

type objectMeta struct {
	Labels            map[string]string `json:"labels"`
	Annotations       map[string]string `json:"annotations"`
	DeletionTimestamp *metav1.Time      `json:"deletionTimestamp"`
	OwnerReferences   []ownerReference  `json:"ownerReferences"`
}

// templateMeta is what the handler reads of a pod template's metadata:
// restartedAt (restart.go).
type templateMeta struct {
	Annotations map[string]string `json:"annotations"`
}

type ownerReference struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Controller *bool  `json:"controller"`
}

type podSpec struct {
	InitContainers      []containerSpec `json:"initContainers"`
	Containers          []containerSpec `json:"containers"`
	EphemeralContainers []containerSpec `json:"ephemeralContainers"`
	ImagePullSecrets    []struct {
		Name string `json:"name"`
	} `json:"imagePullSecrets"`
	ServiceAccountName       string `json:"serviceAccountName"`
	DeprecatedServiceAccount string `json:"serviceAccount"`
}

type containerSpec struct {
	Name  string `json:"name"`
	Image string `json:"image"`
}

type podTemplateSpec struct {
	Metadata templateMeta `json:"metadata"`
	Spec     podSpec      `json:"spec"`
}

// unmarshal is json.Unmarshal through a pooled json.Decoder, whose buffers
// (its decode state, the scanner's stack, the error context) are reused: a
// warm admission otherwise spends a third of its allocations on them.
// Only for raw that is one valid JSON value, which the decoder reads as
// Unmarshal does; anything else, and any error, is json.Unmarshal's.
func unmarshal(raw []byte, v any) error {
	if len(raw) > maxPooled || !json.Valid(raw) {
		return json.Unmarshal(raw, v)
	}
	d := objectDecoders.Get().(*objectDecoder)
	d.src = bodyReader{raw}
	if err := d.dec.Decode(v); err != nil {
		// Not pooled again: its state after an error is not to be trusted.
		return json.Unmarshal(raw, v)
	}
	d.src = bodyReader{}
	objectDecoders.Put(d)
	return nil
}

type objectDecoder struct {
	src bodyReader
	dec *json.Decoder
}

var objectDecoders = sync.Pool{New: func() any {
	d := &objectDecoder{}
	d.dec = json.NewDecoder(&d.src)
	return d
}}

// The shapes of the supported kinds, down to their pod spec.
func decodePod(raw []byte) (*object, error) {
	var o struct {
		Metadata objectMeta `json:"metadata"`
		Spec     podSpec    `json:"spec"`
	}
	if err := unmarshal(raw, &o); err != nil {
		return nil, err
	}
	return &object{meta: o.Metadata, spec: &o.Spec}, nil
}

func decodePodTemplate(raw []byte) (*object, error) {
	var o struct {
		Metadata objectMeta      `json:"metadata"`
		Template podTemplateSpec `json:"template"`
	}
	if err := unmarshal(raw, &o); err != nil {
		return nil, err
	}
	return &object{meta: o.Metadata, tmplMeta: &o.Template.Metadata, spec: &o.Template.Spec}, nil
}

// decodeTemplated reads a kind whose pod template is at spec.template.
func decodeTemplated(raw []byte) (*object, error) {
	var o struct {
		Metadata objectMeta `json:"metadata"`
		Spec     struct {
			Template *podTemplateSpec `json:"template"`
		} `json:"spec"`
	}
	if err := unmarshal(raw, &o); err != nil {
		return nil, err
	}
	return templated(o.Metadata, o.Spec.Template), nil
}

func decodeCronJob(raw []byte) (*object, error) {
	var o struct {
		Metadata objectMeta `json:"metadata"`
		Spec     struct {
			JobTemplate struct {
				Spec struct {
					Template *podTemplateSpec `json:"template"`
				} `json:"spec"`
			} `json:"jobTemplate"`
		} `json:"spec"`
	}
	if err := unmarshal(raw, &o); err != nil {
		return nil, err
	}
	return templated(o.Metadata, o.Spec.JobTemplate.Spec.Template), nil
}

// templated is an object whose pod template is t; nil when it carries none.
func templated(meta objectMeta, t *podTemplateSpec) *object {
	if t == nil {
		return &object{meta: meta}
	}
	return &object{meta: meta, tmplMeta: &t.Metadata, spec: &t.Spec}
}

// container is one image-carrying container of a pod spec.
type container struct {
	name      string
	image     string
	list      string // initContainers, containers or ephemeralContainers
	index     int
	ephemeral bool
}

// path is the JSON pointer of the container's image field in o.
func (c container) path(o *object) string { return imagePath(o.kind, c.list, c.index) }

// imagePath is the JSON pointer of the image field of container i of list
// in a pod spec of kind k: a patch names one per pinned image, and making
// each would allocate, so those of a pod spec's first containers are made
// once.
func imagePath(k *Kind, list string, i int) string {
	if p := imagePaths[k][list]; i < len(p) {
		return p[i]
	}
	return k.specPointer() + "/" + list + "/" + strconv.Itoa(i) + "/image"
}

// tabledPaths is how many containers of each list have their paths made
// once.
const tabledPaths = 32

var imagePaths = func() map[*Kind]map[string][]string {
	m := make(map[*Kind]map[string][]string, len(kinds))
	for i := range kinds {
		k := &kinds[i]
		m[k] = map[string][]string{}
		for _, list := range []string{"initContainers", "containers", "ephemeralContainers"} {
			for j := range tabledPaths {
				m[k][list] = append(m[k][list], k.specPointer()+"/"+list+"/"+strconv.Itoa(j)+"/image")
			}
		}
	}
	return m
}()

// containers lists every container, init container and ephemeral container.
func (o *object) containers() []container {
	if o.spec == nil {
		return nil
	}
	s := o.spec
	out := make([]container, 0, len(s.InitContainers)+len(s.Containers)+len(s.EphemeralContainers))
	for i, c := range s.InitContainers {
		out = append(out, container{c.Name, c.Image, "initContainers", i, false})
	}
	for i, c := range s.Containers {
		out = append(out, container{c.Name, c.Image, "containers", i, false})
	}
	for i, c := range s.EphemeralContainers {
		out = append(out, container{c.Name, c.Image, "ephemeralContainers", i, true})
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

// templateOwner names the controller of a Pod when it is a kind whose pod
// template the webhook admits, else "". Such a Pod runs what the template
// says: the webhook decided that template (or left it alone) when it was
// admitted.
func (o *object) templateOwner() string {
	for _, r := range o.meta.OwnerReferences {
		if r.Controller == nil || !*r.Controller {
			continue
		}
		group, _, grouped := strings.Cut(r.APIVersion, "/")
		if !grouped {
			group = "" // the core group: "v1"
		}
		for _, k := range kinds {
			if k.makesPods && k.Group == group && k.Kind == r.Kind {
				return r.Kind
			}
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
			if strings.HasPrefix(k, Domain) && k != OriginalImagesKey {
				m[k] = v
			}
		}
		return m
	}
	return !maps.Equal(steering(old.meta.Annotations), steering(cur.meta.Annotations))
}
