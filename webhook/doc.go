// Package webhook is the admission handler: it decodes an AdmissionReview
// once (by kind, from one table), walks every container of the pod spec the
// object carries, decides per container what to pin (labels, annotations,
// policy), resolves the images concurrently within the admission budget,
// acts on mode and on_error (patch, warn or deny), and answers through
// controller-runtime's response helpers with a minimal JSON patch.
package webhook
