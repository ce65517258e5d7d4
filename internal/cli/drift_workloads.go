package cli

import (
	"encoding/json"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	pinhook "github.com/image-pin/image-pin-webhook/webhook"
)

// The workloads drift reads: the ones a person rolls forward. A ReplicaSet
// of a Deployment, a Job of a CronJob and a Pod of any controller run their
// owner's template, which is where the pin and the original-images
// annotation live.
const (
	kindDeployment  = "Deployment"
	kindStatefulSet = "StatefulSet"
	kindDaemonSet   = "DaemonSet"
	kindCronJob     = "CronJob"
	kindPod         = "Pod"
)

// driftKinds is the order the report lists kinds in, within a namespace.
var driftKinds = []string{kindDeployment, kindStatefulSet, kindDaemonSet, kindCronJob, kindPod}

// workloadContainers lists the containers of one workload that the webhook
// recorded in its original-images annotation, with what its annotations
// say of each. An object labelled image-pin.io/skip, on its way out, or a
// Pod with a controller gives none.
func workloadContainers(kind string, meta *metav1.ObjectMeta, spec *corev1.PodSpec) []driftContainer {
	if meta.Labels[pinhook.SkipLabel] == "true" || meta.DeletionTimestamp != nil {
		return nil
	}
	if kind == kindPod && metav1.GetControllerOf(meta) != nil {
		return nil
	}
	var written map[string]string
	if json.Unmarshal([]byte(meta.Annotations[pinhook.OriginalImagesKey]), &written) != nil || len(written) == 0 {
		return nil // never admitted by the webhook, or a malformed record (the webhook ignores it too)
	}
	type ctr struct{ name, image, typ string }
	var all []ctr
	for _, c := range spec.InitContainers {
		all = append(all, ctr{c.Name, c.Image, typeInit})
	}
	for _, c := range spec.Containers {
		all = append(all, ctr{c.Name, c.Image, typeContainer})
	}
	for _, c := range spec.EphemeralContainers {
		all = append(all, ctr{c.Name, c.Image, typeEphemeral})
	}
	names := make([]string, len(all))
	for i, c := range all {
		names[i] = c.name
	}
	steer, err := pinhook.ContainerSteerings(meta.Annotations, names)
	var out []driftContainer
	for _, c := range all {
		w, ok := written[c.name]
		if !ok {
			continue
		}
		out = append(out, driftContainer{Namespace: meta.Namespace, Kind: kind, Name: meta.Name, Container: c.name, Type: c.typ,
			Written: w, Stored: c.image, Steering: steer[c.name], SteeringErr: err})
	}
	return out
}

// containersOf lists the containers of every workload in an API list.
func containersOf(list any) []driftContainer {
	var out []driftContainer
	switch l := list.(type) {
	case *appsv1.DeploymentList:
		for i := range l.Items {
			o := &l.Items[i]
			out = append(out, workloadContainers(kindDeployment, &o.ObjectMeta, &o.Spec.Template.Spec)...)
		}
	case *appsv1.StatefulSetList:
		for i := range l.Items {
			o := &l.Items[i]
			out = append(out, workloadContainers(kindStatefulSet, &o.ObjectMeta, &o.Spec.Template.Spec)...)
		}
	case *appsv1.DaemonSetList:
		for i := range l.Items {
			o := &l.Items[i]
			out = append(out, workloadContainers(kindDaemonSet, &o.ObjectMeta, &o.Spec.Template.Spec)...)
		}
	case *batchv1.CronJobList:
		for i := range l.Items {
			o := &l.Items[i]
			out = append(out, workloadContainers(kindCronJob, &o.ObjectMeta, &o.Spec.JobTemplate.Spec.Template.Spec)...)
		}
	case *corev1.PodList:
		for i := range l.Items {
			o := &l.Items[i]
			out = append(out, workloadContainers(kindPod, &o.ObjectMeta, &o.Spec)...)
		}
	}
	return out
}
