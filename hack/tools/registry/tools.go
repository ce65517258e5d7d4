//go:build tools

// Package tools pins distribution's registry for the end-to-end tests; hack/envtest-assets.sh builds it.
package tools

import _ "github.com/distribution/distribution/v3/cmd/registry"
