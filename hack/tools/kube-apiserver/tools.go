//go:build tools

// Package tools pins the Kubernetes binaries the end-to-end tests and the demo
// run, all from one k8s.io/kubernetes version so that the API server, the
// controllers and the client agree; hack/envtest-assets.sh builds them.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
