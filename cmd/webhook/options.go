package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"go.uber.org/zap/zapcore"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// options are the server's flags: bound by AddFlags, checked by Validate
// before anything starts, then read by run (as cert-manager's
// pkg/webhook/options does). --kubeconfig is not here: controller-runtime
// binds it to the command line itself and ctrl.GetConfig reads it.
type options struct {
	ConfigPath     string        // --config
	CertDir        string        // --cert-dir
	Port           int           // --port
	MetricsAddr    string        // --metrics-bind-address; "0" turns metrics off
	ProbeAddr      string        // --health-probe-bind-address; "0" or "" turns probes off
	ShutdownDelay  time.Duration // --shutdown-delay
	EnableHTTP2    bool          // --enable-http2
	ClientCAFile   string        // --client-ca-file; "" accepts any client
	State          string        // --state: cluster or memory (state.go)
	StateNamespace string        // --state-namespace
	Logging        zap.Options   // --zap-*
}

// newOptions holds every default in one place; docs/operations.md and
// ../shared/interface.md name the same ones.
func newOptions() *options {
	return &options{
		ConfigPath:     "/etc/image-pin-webhook/config.yaml",
		CertDir:        "/tmp/k8s-webhook-server/serving-certs",
		Port:           9443,
		MetricsAddr:    ":8080",
		ProbeAddr:      ":8081",
		ShutdownDelay:  5 * time.Second,
		State:          stateCluster,
		StateNamespace: defaultStateNamespace(),
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
	fs.StringVar(&o.State, "state", o.State, "where resolution records live: cluster (ImageResolution objects in --state-namespace) or memory (per process)")
	fs.StringVar(&o.StateNamespace, "state-namespace", o.StateNamespace, "the namespace that holds the resolution records and the leader-election Lease")
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
	if o.ShutdownDelay < 0 {
		errs = append(errs, fmt.Errorf("--shutdown-delay: %s must not be negative", o.ShutdownDelay))
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
		opts = append(opts, func(c *tls.Config) {
			c.ClientCAs = pool
			c.ClientAuth = tls.RequireAndVerifyClientCert
		})
	}
	return opts, nil
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
