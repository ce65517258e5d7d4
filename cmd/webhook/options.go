package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap/zapcore"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// options are the server's flags: bound by AddFlags, checked by Validate
// before anything starts, then read by run (as cert-manager's
// pkg/webhook/options does). --kubeconfig is not here: controller-runtime
// binds it to the command line itself and ctrl.GetConfig reads it.
type options struct {
	ConfigPath    string        // --config
	CertDir       string        // --cert-dir
	Port          int           // --port
	MetricsAddr   string        // --metrics-bind-address; "0" turns metrics off
	ProbeAddr     string        // --health-probe-bind-address; "0" or "" turns probes off
	ShutdownDelay time.Duration // --shutdown-delay
	EnableHTTP2   bool          // --enable-http2
	ClientCAFile  string        // --client-ca-file; "" accepts any client
	// ClientCertName (--client-cert-name), with --client-ca-file, is the CN
	// or a DNS SAN the client certificate must carry; "" accepts any name.
	ClientCertName string
	// CertSecret (--cert-secret) turns on self-managed certificates (package
	// internal/certs), kept in this Secret of StateNamespace; "" leaves the
	// files in CertDir to cert-manager or the chart.
	CertSecret        string
	WebhookConfigName string      // --webhook-config-name: whose caBundles get the CA
	CertDNSName       string      // --cert-dns-name: the serving certificate's name
	State             string      // --state: cluster or memory (state.go)
	StateNamespace    string      // --state-namespace: the records, the Lease and CertSecret
	NamespaceLabel    string      // --namespace-label: KEY=VALUE of the namespaces the API server sends (the namespace gate)
	Logging           zap.Options // --zap-*
}

// newOptions holds every default in one place; docs/operations.md and
// ../shared/interface.md name the same ones.
func newOptions() *options {
	ns := defaultStateNamespace()
	return &options{
		ConfigPath:     "/etc/image-pin-webhook/config.yaml",
		CertDir:        "/tmp/k8s-webhook-server/serving-certs",
		Port:           9443,
		MetricsAddr:    ":8080",
		ProbeAddr:      ":8081",
		ShutdownDelay:  5 * time.Second,
		State:          stateCluster,
		StateNamespace: ns,
		NamespaceLabel: "image-pin.io/enabled=true",
		// The chart's names: the Service is image-pin-webhook.NS and the
		// MutatingWebhookConfiguration image-pin-webhook, for a release of
		// that name.
		WebhookConfigName: "image-pin-webhook",
		CertDNSName:       "image-pin-webhook." + ns + ".svc",
		// No stack traces below panic: an operator reads the error's text
		// (a config that failed to load names its file, entry and field),
		// and a trace on every retry buries it. --zap-stacktrace-level
		// brings them back.
		Logging: zap.Options{Development: false, TimeEncoder: zapcore.ISO8601TimeEncoder, StacktraceLevel: zapcore.PanicLevel},
	}
}

// AddFlags binds the options to fs, the values already set as defaults.
func (o *options) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.ConfigPath, "config", o.ConfigPath, "the config file; re-read on change without a restart")
	fs.StringVar(&o.CertDir, "cert-dir", o.CertDir, "directory holding tls.crt and tls.key; rotated files are picked up without a restart")
	fs.IntVar(&o.Port, "port", o.Port, "HTTPS port of the admission endpoint")
	fs.StringVar(&o.MetricsAddr, "metrics-bind-address", o.MetricsAddr, "address of Prometheus /metrics; 0 turns it off")
	fs.StringVar(&o.ProbeAddr, "health-probe-bind-address", o.ProbeAddr, "address of /healthz and /readyz")
	fs.DurationVar(&o.ShutdownDelay, "shutdown-delay", o.ShutdownDelay, "on SIGTERM, how long /readyz reports not ready before the server stops accepting, so endpoints drop this replica first")
	fs.BoolVar(&o.EnableHTTP2, "enable-http2", o.EnableHTTP2, "serve HTTP/2 on the admission port (off by default, as kubebuilder does since CVE-2023-44487)")
	fs.StringVar(&o.ClientCAFile, "client-ca-file", o.ClientCAFile, "require API-server client certificates signed by this CA (for clusters with an admission kubeconfig)")
	fs.StringVar(&o.ClientCertName, "client-cert-name", o.ClientCertName, "with --client-ca-file: the CN or a DNS SAN the API server's client certificate must carry")
	fs.StringVar(&o.CertSecret, "cert-secret", o.CertSecret, "manage the CA and serving certificate in this Secret of --state-namespace, write them into --cert-dir and the CA into --webhook-config-name's caBundle, rotating before expiry (off when empty: cert-manager or the chart provides --cert-dir)")
	fs.StringVar(&o.WebhookConfigName, "webhook-config-name", o.WebhookConfigName, "with --cert-secret: the MutatingWebhookConfiguration whose webhooks get the CA in their caBundle")
	fs.StringVar(&o.CertDNSName, "cert-dns-name", o.CertDNSName, "with --cert-secret: the serving certificate's DNS name (the Service's NAME.NAMESPACE.svc); NAME.cluster.local is added")
	fs.StringVar(&o.State, "state", o.State, "where resolution records live: cluster (ImageResolution objects in --state-namespace) or memory (per process)")
	fs.StringVar(&o.StateNamespace, "state-namespace", o.StateNamespace, "the namespace that holds the resolution records and the leader-election Lease")
	fs.StringVar(&o.NamespaceLabel, "namespace-label", o.NamespaceLabel, "KEY=VALUE: the label of the namespaces the MutatingWebhookConfiguration's namespaceSelector sends; a review naming any other namespace is left alone before any lookup (change it only with the selector)")
	o.Logging.BindFlags(fs)
}

// Validate checks the values on their own, naming the flag. Files are read
// later, by whatever uses them.
func (o *options) Validate() error {
	var errs []error
	if o.ConfigPath == "" {
		errs = append(errs, errors.New("--config: must be set"))
	}
	if o.CertDir == "" {
		errs = append(errs, errors.New("--cert-dir: must be set"))
	}
	// controller-runtime would quietly serve 9443 for a port of 0.
	if o.Port < 1 || o.Port > 65535 {
		errs = append(errs, fmt.Errorf("--port: %d is not a port (1-65535)", o.Port))
	}
	if o.MetricsAddr != "0" {
		if err := checkAddress(o.MetricsAddr); err != nil {
			errs = append(errs, fmt.Errorf("--metrics-bind-address: %w", err))
		}
	}
	if o.ProbeAddr != "0" && o.ProbeAddr != "" {
		if err := checkAddress(o.ProbeAddr); err != nil {
			errs = append(errs, fmt.Errorf("--health-probe-bind-address: %w", err))
		}
	}
	if o.State != stateCluster && o.State != stateMemory {
		errs = append(errs, fmt.Errorf("--state: %q must be cluster or memory", o.State))
	}
	if o.State == stateCluster && o.StateNamespace == "" {
		errs = append(errs, errors.New("--state-namespace: must be set with --state=cluster"))
	}
	if k, v, ok := strings.Cut(o.NamespaceLabel, "="); !ok || k == "" || v == "" {
		errs = append(errs, fmt.Errorf("--namespace-label: %q must be KEY=VALUE", o.NamespaceLabel))
	}
	if o.ShutdownDelay < 0 {
		errs = append(errs, fmt.Errorf("--shutdown-delay: %s must not be negative", o.ShutdownDelay))
	}
	if o.ClientCertName != "" && o.ClientCAFile == "" {
		errs = append(errs, errors.New("--client-cert-name: needs --client-ca-file, which makes the API server present a certificate"))
	}
	if o.CertSecret != "" {
		for _, f := range []struct{ flag, value string }{
			{"--cert-secret", o.CertSecret}, {"--webhook-config-name", o.WebhookConfigName}, {"--cert-dns-name", o.CertDNSName},
		} {
			if msgs := validation.IsDNS1123Subdomain(f.value); len(msgs) > 0 {
				errs = append(errs, fmt.Errorf("%s: %q: %s", f.flag, f.value, strings.Join(msgs, "; ")))
			}
		}
	}
	return errors.Join(errs...)
}

// checkAddress accepts host:port, as net.Listen takes it.
func checkAddress(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q must be host:port or :port", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: %q is not a port", addr, port)
	}
	return nil
}

// admissionTLS are the admission port's TLS settings beyond tlsMin.
func (o *options) admissionTLS() ([]func(*tls.Config), error) {
	var opts []func(*tls.Config)
	if !o.EnableHTTP2 {
		opts = append(opts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	if o.ClientCAFile != "" {
		pem, err := os.ReadFile(o.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("--client-ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--client-ca-file: %s holds no PEM certificate", o.ClientCAFile)
		}
		name := o.ClientCertName
		opts = append(opts, func(c *tls.Config) {
			c.ClientCAs = pool
			c.ClientAuth = tls.RequireAndVerifyClientCert
			if name != "" {
				// Runs after the chain is verified against ClientCAs.
				c.VerifyConnection = func(cs tls.ConnectionState) error { return clientNamed(cs, name) }
			}
		})
	}
	return opts, nil
}

// clientNamed accepts a verified client certificate whose CN or one of
// whose DNS SANs is name. A CA such as the cluster's also signs every
// kubelet's and controller's client certificate; the name tells the API
// server's apart.
func clientNamed(cs tls.ConnectionState, name string) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("no client certificate")
	}
	leaf := cs.PeerCertificates[0]
	if leaf.Subject.CommonName == name || slices.Contains(leaf.DNSNames, name) {
		return nil
	}
	return fmt.Errorf("client certificate %q is not --client-cert-name %q", leaf.Subject.CommonName, name)
}

// tlsMin is every listener's floor: TLS 1.2, and for TLS 1.2 forward-secret
// AEAD suites only (TLS 1.3 suites are not configurable).
func tlsMin(c *tls.Config) {
	c.MinVersion = tls.VersionTLS12
	c.CipherSuites = []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	}
}
