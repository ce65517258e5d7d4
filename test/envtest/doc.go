// Package envtest holds the end-to-end tests: a real kube-apiserver and etcd
// (controller-runtime's envtest), real distribution registry servers on
// loopback (TLS with htpasswd, plain, and bearer-token auth with a token
// server in the test), and the built webhook binary serving a
// MutatingWebhookConfiguration as the chart renders it.
//
// Run with `make e2e` (or `make test`), which builds what it needs and sets
// KUBEBUILDER_ASSETS and IMAGE_PIN_WEBHOOK_BIN.
package envtest
