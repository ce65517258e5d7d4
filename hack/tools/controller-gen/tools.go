//go:build tools

// Package tools pins controller-gen, which generates the ImageResolution
// CRD and deepcopy code from api/ (make generate).
package tools

import _ "sigs.k8s.io/controller-tools/cmd/controller-gen"
