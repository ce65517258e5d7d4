// Command image-pin-webhook is the admission webhook server: it wires the
// config watcher, registries, resolver and admission handler into a
// controller-runtime manager. The subcommands check and resolve
// (internal/cli) share the binary.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap/zapcore"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/image-pin/image-pin-webhook/config"
	"github.com/image-pin/image-pin-webhook/internal/cli"
	"github.com/image-pin/image-pin-webhook/registries"
	"github.com/image-pin/image-pin-webhook/registries/client"
	"github.com/image-pin/image-pin-webhook/registries/credentials"
	"github.com/image-pin/image-pin-webhook/resolver"
	pinhook "github.com/image-pin/image-pin-webhook/webhook"
)

var version = "dev"

func main() {
	if len(os.Args) > 1 && cli.IsCommand(os.Args[1]) {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	var (
		configPath  = flag.String("config", "/etc/image-pin-webhook/config.yaml", "the config file; re-read on change without a restart")
		certDir     = flag.String("cert-dir", "/tmp/k8s-webhook-server/serving-certs", "directory holding tls.crt and tls.key; rotated files are picked up without a restart")
		port        = flag.Int("port", 9443, "HTTPS port of the admission endpoint")
		metricsAddr = flag.String("metrics-bind-address", ":8080", "address of Prometheus /metrics; 0 turns it off")
		probeAddr   = flag.String("health-probe-bind-address", ":8081", "address of /healthz and /readyz")
		drain       = flag.Duration("shutdown-delay", 5*time.Second, "on SIGTERM, how long /readyz reports not ready before the server stops accepting, so endpoints drop this replica first")
		enableHTTP2 = flag.Bool("enable-http2", false, "serve HTTP/2 on the admission port (off by default, as kubebuilder does since CVE-2023-44487)")
		clientCA    = flag.String("client-ca-file", "", "require API-server client certificates signed by this CA (for clusters with an admission kubeconfig)")
	)
	opts := zap.Options{Development: false, TimeEncoder: zapcore.ISO8601TimeEncoder}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))
	log := ctrl.Log.WithName("image-pin-webhook")

	// Credential scripts' orphaned children are reparented to this process
	// (PID 1 in its container, or a subreaper elsewhere) and reaped.
	if err := credentials.BecomeSubreaper(); err != nil {
		log.Info("cannot become a child subreaper; credential scripts' orphans go to init", "error", err.Error())
	}
	if err := run(*configPath, *certDir, *port, *metricsAddr, *probeAddr, *drain, serving{http2: *enableHTTP2, clientCA: *clientCA}); err != nil {
		log.Error(err, "exiting")
		fmt.Fprintln(os.Stderr, "image-pin-webhook:", err)
		os.Exit(1)
	}
}

// serving is how the admission port is served.
type serving struct {
	http2    bool   // --enable-http2
	clientCA string // --client-ca-file
}

// tlsOpts are the admission port's TLS settings beyond the minimum version.
func (s serving) tlsOpts() ([]func(*tls.Config), error) {
	var opts []func(*tls.Config)
	if !s.http2 {
		opts = append(opts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	if s.clientCA != "" {
		pem, err := os.ReadFile(s.clientCA)
		if err != nil {
			return nil, fmt.Errorf("--client-ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--client-ca-file: %s holds no PEM certificate", s.clientCA)
		}
		opts = append(opts, func(c *tls.Config) {
			c.ClientCAs = pool
			c.ClientAuth = tls.RequireAndVerifyClientCert
		})
	}
	return opts, nil
}

func run(configPath, certDir string, port int, metricsAddr, probeAddr string, drain time.Duration, srv serving) error {
	log := ctrl.Log.WithName("image-pin-webhook")
	restCfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	tlsMin := func(c *tls.Config) {
		c.MinVersion = tls.VersionTLS12
		c.CipherSuites = []uint16{ // TLS 1.2: forward-secret AEAD only (TLS 1.3 suites are not configurable)
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		}
	}
	admissionTLS, err := srv.tlsOpts()
	if err != nil {
		return err
	}
	mgr, err := ctrl.NewManager(restCfg, manager.Options{
		Metrics:                 metricsserver.Options{BindAddress: metricsAddr, TLSOpts: []func(*tls.Config){tlsMin}},
		HealthProbeBindAddress:  probeAddr,
		GracefulShutdownTimeout: ptr(30 * time.Second),
		WebhookServer: webhook.NewServer(webhook.Options{
			Port:    port,
			CertDir: certDir,
			TLSOpts: append([]func(*tls.Config){tlsMin}, admissionTLS...),
		}),
	})
	if err != nil {
		return fmt.Errorf("manager: %w", err)
	}

	// The process context: cancelled after the drain below. Cloud credentials
	// (aws:, gcp:, azure:) refresh in the background until it ends.
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	creds := credentials.New(credentials.WithSecretReader(mgr.GetAPIReader()), credentials.WithContext(ctx),
		credentials.WithLogger(log.WithName("credentials")))
	defer creds.Close()
	regMetrics := client.NewMetrics(metrics.Registry)
	changed := make(chan struct{}, 1)
	res := resolver.New(resolver.WithMetrics(resolver.NewMetrics(metrics.Registry)))
	watcher, err := config.NewWatcher(configPath,
		[]registries.SetOption{registries.WithCredentials(creds), registries.WithMetrics(regMetrics)},
		config.WithWatcherLogger(log.WithName("config")),
		config.WithReloadMetrics(metrics.Registry),
		config.WithOnChange(func(c *config.Config) {
			select {
			case changed <- struct{}{}:
			default:
			}
		}),
	)
	if err != nil {
		return err
	}
	if err := mgr.Add(watcher); err != nil {
		return err
	}
	if err := mgr.Add(&registries.Pinger{
		Set:     func() *registries.Set { return watcher.Current().Registries },
		Log:     log.WithName("ping"),
		Changed: changed,
	}); err != nil {
		return err
	}

	handler := pinhook.NewHandler(watcher.Current, res,
		pinhook.WithOwnNamespace(os.Getenv("POD_NAMESPACE")),
		pinhook.WithHandlerMetrics(pinhook.NewMetrics(metrics.Registry)),
		pinhook.WithLogger(log.WithName("admission")),
	)
	mgr.GetWebhookServer().Register("/mutate", pinhook.WithDeadlines(
		&webhook.Admission{Handler: handler, RecoverPanic: ptr(true)}, pinhook.DefaultReadTimeout, pinhook.DefaultWriteTimeout))

	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	// On SIGTERM readiness goes false first, so the Service stops sending
	// admissions here; then the server stops accepting and finishes the
	// admissions in flight before the process exits.
	var draining atomic.Bool
	started := mgr.GetWebhookServer().StartedChecker()
	if err := mgr.AddReadyzCheck("webhook", func(r *http.Request) error {
		if draining.Load() {
			return errors.New("shutting down")
		}
		return started(r)
	}); err != nil {
		return err
	}
	signals := ctrl.SetupSignalHandler()
	go func() {
		<-signals.Done()
		draining.Store(true)
		log.Info("shutting down: not ready, then draining", "delay", drain.String())
		time.Sleep(drain)
		stop()
	}()
	log.Info("starting", "version", version, "config", configPath, "port", port)
	return mgr.Start(ctx)
}

func ptr[T any](v T) *T { return &v }
