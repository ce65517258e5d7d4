package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// MaxHistory is how many previous digests a record keeps.
const MaxHistory = 10

// ImageResolution is one answer the webhook obtained from a registry: what
// was asked (spec) and what the registry said (status). Its name is a hash
// of the query's full key (entry identity, repository, policy, credential
// identity); nothing in it names a credential or a Secret.
//
// There is no status subresource on purpose: a new answer is one write.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:shortName=imgres,categories=image-pin
// +kubebuilder:printcolumn:name="Image",type=string,JSONPath=`.spec.image`,description="the image as asked: repository and tag, or the constraint"
// +kubebuilder:printcolumn:name="Registry",type=string,JSONPath=`.spec.registry`,description="the registry entry"
// +kubebuilder:printcolumn:name="Tag",type=string,JSONPath=`.status.tag`,description="the tag chosen"
// +kubebuilder:printcolumn:name="Digest",type=string,JSONPath=`.status.shortDigest`
// +kubebuilder:printcolumn:name="Resolved",type=date,JSONPath=`.status.resolvedAt`,description="when the registry gave this digest"
// +kubebuilder:printcolumn:name="Confirmed",type=date,JSONPath=`.status.confirmedAt`,description="when the registry last confirmed it"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ImageResolution struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ImageResolutionSpec   `json:"spec"`
	Status ImageResolutionStatus `json:"status,omitempty"`
}

// ImageResolutionSpec is the query, as the webhook put it together.
type ImageResolutionSpec struct {
	// Image is the image as asked, for people: repository:tag for the
	// digest strategy, else the repository with the strategy and its
	// constraint.
	Image string `json:"image"`
	// Registry is the name of the registry entry the answer came through.
	Registry string `json:"registry"`
	// Repository is the repository path at the entry's api_url.
	Repository string `json:"repository"`
	// Tag is the tag as written (digest strategy only).
	// +optional
	Tag string `json:"tag,omitempty"`
	// Strategy is how the tag is chosen.
	// +kubebuilder:validation:Enum=digest;semver;newest-build;alphabetical
	Strategy string `json:"strategy"`
	// +optional
	Constraint string `json:"constraint,omitempty"`
	// +optional
	AllowTags string `json:"allowTags,omitempty"`
	// +optional
	IgnoreTags []string `json:"ignoreTags,omitempty"`
	// +optional
	Platforms []string `json:"platforms,omitempty"`
	// +optional
	TagSortMode string `json:"tagSortMode,omitempty"`
	// Namespace is the namespace whose admission created the record: it
	// counts against that namespace's max_records_per_namespace.
	Namespace string `json:"namespace"`
	// QueryHash is the hash of the query's full key; the object's name is
	// derived from it.
	QueryHash string `json:"queryHash"`
}

// ImageResolutionStatus is the registry's answer.
type ImageResolutionStatus struct {
	// Tag is the tag chosen, as the registry lists it.
	Tag string `json:"tag,omitempty"`
	// Digest is the digest pinned (sha256:…).
	Digest string `json:"digest,omitempty"`
	// ShortDigest is the digest cut to 12 hex digits, for kubectl get.
	ShortDigest string `json:"shortDigest,omitempty"`
	// ResolvedAt is when the registry first gave this digest.
	ResolvedAt metav1.Time `json:"resolvedAt,omitempty"`
	// ConfirmedAt is when the registry last confirmed it.
	ConfirmedAt metav1.Time `json:"confirmedAt,omitempty"`
	// LastUsed is, to within the refresh window, when an admission last
	// used the record.
	// +optional
	LastUsed *metav1.Time `json:"lastUsed,omitempty"`
	// History holds the previous answers, newest first (at most 10).
	// +optional
	// +kubebuilder:validation:MaxItems=10
	History []HistoryEntry `json:"history,omitempty"`
}

// HistoryEntry is an answer the record no longer gives.
type HistoryEntry struct {
	Tag    string `json:"tag,omitempty"`
	Digest string `json:"digest"`
	// Seen is when the registry first gave it.
	Seen metav1.Time `json:"seen"`
	// Until is when it was replaced.
	Until metav1.Time `json:"until"`
}

// ImageResolutionList is a list of ImageResolution.
//
// +kubebuilder:object:root=true
type ImageResolutionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ImageResolution `json:"items"`
}

var _ runtime.Object = &ImageResolution{}
