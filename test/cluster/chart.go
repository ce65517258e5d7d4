package cluster

import (
	"bytes"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	certmanagerv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	helmrelease "helm.sh/helm/v3/pkg/release"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// ChartDir is charts/image-pin-webhook in this checkout.
func ChartDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "charts", "image-pin-webhook")
}

// Scheme knows every kind the chart renders, cert-manager's included. It
// is built once and shared: callers only read it (decode, a client's
// scheme). Building one costs more than a render under the race detector.
func Scheme() *k8sruntime.Scheme { return sharedScheme() }

var sharedScheme = sync.OnceValue(func() *k8sruntime.Scheme {
	s := k8sruntime.NewScheme()
	_ = clientgoscheme.AddToScheme(s)
	_ = certmanagerv1.AddToScheme(s)
	return s
})

// RenderRelease renders the chart client-side, as `helm install --dry-run`
// does, with values validated against values.schema.json: the release
// with its manifest, hooks and notes, not yet decoded.
func RenderRelease(release, namespace string, values map[string]any) (*helmrelease.Release, error) {
	ch, err := loader.Load(ChartDir())
	if err != nil {
		return nil, err
	}
	inst := action.NewInstall(&action.Configuration{})
	inst.ClientOnly, inst.DryRun = true, true
	inst.ReleaseName, inst.Namespace = release, namespace
	inst.KubeVersion = &chartutil.KubeVersion{Version: "v1.37.2", Major: "1", Minor: "37"}
	return inst.Run(ch, values)
}

// Render renders the chart client-side, as `helm install --dry-run` does,
// with values validated against values.schema.json, and decodes every
// object strictly into its typed Go struct so an unknown field fails.
func Render(release, namespace string, values map[string]any) ([]client.Object, error) {
	rel, err := RenderRelease(release, namespace, values)
	if err != nil {
		return nil, err
	}
	var objs []client.Object
	scheme := Scheme()
	for _, doc := range strings.Split(rel.Manifest, "\n---") {
		doc = strings.TrimSpace(doc)
		if doc == "" || strings.Trim(doc, "-") == "" {
			continue
		}
		obj, err := DecodeStrict(scheme, []byte(doc))
		if err != nil {
			return nil, err
		}
		objs = append(objs, obj)
	}
	return objs, nil
}

// DecodeStrict decodes one YAML document into its typed struct, refusing
// unknown fields.
func DecodeStrict(scheme *k8sruntime.Scheme, doc []byte) (client.Object, error) {
	var tm struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return nil, err
	}
	gv, err := schema.ParseGroupVersion(tm.APIVersion)
	if err != nil {
		return nil, err
	}
	gvk := gv.WithKind(tm.Kind)
	typed, err := scheme.New(gvk)
	if err != nil && gvk.Group == "monitoring.coreos.com" {
		// The Prometheus Operator's types are not a dependency: read it as is.
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(doc, &u.Object); err != nil {
			return nil, err
		}
		return u, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", gvk, err)
	}
	if err := yaml.UnmarshalStrict(doc, typed); err != nil {
		return nil, fmt.Errorf("%s: %w\n%s", gvk, err, firstLines(doc, 6))
	}
	obj, ok := typed.(client.Object)
	if !ok {
		return nil, fmt.Errorf("%s is not an object", gvk)
	}
	obj.GetObjectKind().SetGroupVersionKind(gvk)
	return obj, nil
}

func firstLines(b []byte, n int) string {
	lines := bytes.SplitN(b, []byte("\n"), n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// LoopbackWebhook takes the chart's MutatingWebhookConfiguration and points
// it at url with caBundle, since envtest has no service routing.
func LoopbackWebhook(objs []client.Object, url string, caBundle []byte) (*admissionregistrationv1.MutatingWebhookConfiguration, error) {
	for _, o := range objs {
		if mwc, ok := o.(*admissionregistrationv1.MutatingWebhookConfiguration); ok {
			mwc = mwc.DeepCopy()
			delete(mwc.Annotations, "cert-manager.io/inject-ca-from")
			for i := range mwc.Webhooks {
				mwc.Webhooks[i].ClientConfig = admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: caBundle}
			}
			return mwc, nil
		}
	}
	return nil, fmt.Errorf("the chart renders no MutatingWebhookConfiguration")
}
