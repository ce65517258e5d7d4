package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Group and Version name the API.
const (
	Group   = "image-pin.io"
	Version = "v1alpha1"
)

// GroupVersion is the API group and version of ImageResolution.
func GroupVersion() schema.GroupVersion { return schema.GroupVersion{Group: Group, Version: Version} }

// AddToScheme adds the types of this group version to a scheme.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion(), &ImageResolution{}, &ImageResolutionList{})
	metav1.AddToGroupVersion(s, GroupVersion())
	return nil
}
