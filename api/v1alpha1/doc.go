// Package v1alpha1 holds the ImageResolution API (image-pin.io/v1alpha1):
// one resolution record per query, kept in the webhook's namespace so that
// every replica pins a query to the same digest and the answer survives
// restarts. The CRD in charts/image-pin-webhook/crds and the deepcopy code
// are generated from these types (make generate).
//
// +kubebuilder:object:generate=true
// +groupName=image-pin.io
package v1alpha1
