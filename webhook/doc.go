// Package webhook is the admission handler: it decodes an AdmissionReview
// once, walks every container of the pod spec the object carries, decides per
// container what to pin (labels, annotations, policy), resolves the images
// concurrently within the admission budget, and answers with a minimal JSON
// patch.
package webhook
