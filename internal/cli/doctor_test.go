package cli

import "testing"

// The API server's own words with failurePolicy Fail, as kube-apiserver
// 1.3x writes them.
func TestTheAPIServersErrorTextNamesTheCause(t *testing.T) {
	const prefix = `Internal error occurred: failed calling webhook "pin.image-pin.io": failed to call webhook: Post "https://image-pin-webhook.image-pin-system.svc:443/mutate?timeout=10s": `
	tests := []struct {
		name, msg, want string
	}{
		{"a refused connection is unreachable though the URL says timeout", prefix + "dial tcp 10.96.0.12:443: connect: connection refused", causeUnreachable},
		{"a Service without endpoints is unreachable", `Internal error occurred: failed calling webhook "pin.image-pin.io": failed to call webhook: Post "https://x.y.svc:443/mutate?timeout=10s": no endpoints available for service "x"`, causeUnreachable},
		{"an unknown authority is TLS", prefix + "tls: failed to verify certificate: x509: certificate signed by unknown authority", causeTLS},
		{"a deadline is a timeout", prefix + "context deadline exceeded", causeTimeout},
		{"a client timeout is a timeout", prefix + "net/http: request canceled (Client.Timeout exceeded while awaiting headers)", causeTimeout},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := classify(tc.msg); got != tc.want {
				t.Errorf("classify = %s, want %s", got, tc.want)
			}
		})
	}
}
