// Command image-pin-webhook is the admission webhook server: it wires the
// config watcher, registries, resolver and admission handler into a
// controller-runtime manager. The subcommands check, resolve, doctor and drift
// (internal/cli) share the binary; commands.go decides which runs.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/image-pin/image-pin-webhook/config"
	"github.com/image-pin/image-pin-webhook/internal/certs"
	"github.com/image-pin/image-pin-webhook/internal/nsgate"
	"github.com/image-pin/image-pin-webhook/registries"
	"github.com/image-pin/image-pin-webhook/registries/client"
	"github.com/image-pin/image-pin-webhook/registries/credentials"
	"github.com/image-pin/image-pin-webhook/resolver"
	pinhook "github.com/image-pin/image-pin-webhook/webhook"
)

var version = "dev"

func main() {
	// flag.CommandLine, because controller-runtime binds --kubeconfig there.
	opts := newOptions()
	opts.AddFlags(flag.CommandLine)
	flag.CommandLine.Usage = func() { writeHelp(flag.CommandLine.Output(), flag.CommandLine) }
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code, serve := dispatch(ctx, os.Args[1:], flag.CommandLine, version, os.Stdout, os.Stderr)
	stop()
	if !serve {
		os.Exit(code)
	}
	flag.Parse()
	if code := checkPositional(flag.CommandLine, os.Stderr); code != 0 {
		os.Exit(code)
	}
	if err := opts.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, "image-pin-webhook:", err)
		os.Exit(2) // as flag.Parse exits on a flag it cannot parse
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts.Logging)))
	log := ctrl.Log.WithName("image-pin-webhook")

	// Credential scripts' orphaned children are reparented to this process
	// (PID 1 in its container, or a subreaper elsewhere) and reaped.
	if err := credentials.BecomeSubreaper(); err != nil {
		log.Info("cannot become a child subreaper; credential scripts' orphans go to init", "error", err.Error())
	}
	if err := run(ctrl.SetupSignalHandler(), opts); err != nil {
		log.Error(err, "exiting")
		fmt.Fprintln(os.Stderr, "image-pin-webhook:", err)
		os.Exit(1)
	}
}

// run serves until ctx ends (SIGTERM), then drains: /readyz fails for
// opts.ShutdownDelay, so the Service stops sending admissions here, before
// the server stops accepting and finishes the admissions in flight.
func run(ctx context.Context, opts *options) error {
	log := ctrl.Log.WithName("image-pin-webhook")
	restCfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	admissionTLS, err := opts.admissionTLS()
	if err != nil {
		return err
	}
	// The server is added to the manager by serveWhenReady, never through
	// mgr.GetWebhookServer, which would add it a second time.
	server := webhook.NewServer(webhook.Options{
		Port:    opts.Port,
		CertDir: opts.CertDir,
		TLSOpts: append([]func(*tls.Config){tlsMin}, admissionTLS...),
	})
	records := decideState(restCfg, opts)
	mgrOpts := manager.Options{
		Metrics:                 metricsserver.Options{BindAddress: opts.MetricsAddr, TLSOpts: []func(*tls.Config){tlsMin}},
		HealthProbeBindAddress:  opts.ProbeAddr,
		GracefulShutdownTimeout: ptr(30 * time.Second),
		WebhookServer:           server,
	}
	if err := records.managerOptions(&mgrOpts, opts); err != nil {
		return err
	}
	mgr, err := ctrl.NewManager(restCfg, mgrOpts)
	if err != nil {
		return fmt.Errorf("manager: %w", err)
	}

	// The manager's context outlives ctx by the drain.
	mgrCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	certsReady, err := serveWhenReady(mgrCtx, mgr, server, opts, log)
	if err != nil {
		return err
	}
	creds := credentials.New(credentials.WithSecretReader(mgr.GetAPIReader()), credentials.WithLogger(log.WithName("credentials")))
	// Cloud credentials (aws, gcp, azure) refresh in the background while
	// the manager runs, on every replica.
	if err := mgr.Add(creds.CloudRefresher()); err != nil {
		return err
	}
	watcher, err := config.NewWatcher(opts.ConfigPath,
		[]registries.SetOption{registries.WithCredentials(creds), registries.WithMetrics(client.NewMetrics(metrics.Registry))},
		config.WithWatcherLogger(log.WithName("config")),
		config.WithReloadMetrics(metrics.Registry),
	)
	if err != nil {
		return err
	}
	if err := mgr.Add(watcher); err != nil {
		return err
	}
	if err := mgr.Add(&registries.Pinger{Source: watcher, Log: log.WithName("ping")}); err != nil {
		return err
	}

	stateOpts, addRefresher, err := setupState(mgr, restCfg, records, opts, watcher.Current, log)
	if err != nil {
		return err
	}
	pinhook.NewBuildInfo(metrics.Registry, version)
	res := resolver.New(append(stateOpts, resolver.WithMetrics(resolver.NewMetrics(metrics.Registry)))...)
	if err := addRefresher(res); err != nil {
		return err
	}
	namespaces, err := namespaceGate(mgr, restCfg, opts.NamespaceLabel, log.WithName("namespaces"))
	if err != nil {
		return err
	}
	admissionMetrics := pinhook.NewMetrics(metrics.Registry)
	handler := pinhook.NewHandler(watcher.Current, res,
		pinhook.WithNamespaceGate(namespaces),
		pinhook.WithOwnNamespace(os.Getenv("POD_NAMESPACE")),
		pinhook.WithHandlerMetrics(admissionMetrics),
		pinhook.WithLogger(log.WithName("admission")),
	)
	// Registered with the server, which counts it in controller-runtime's
	// webhook metrics; pinhook.Serve answers as webhook.Admission does,
	// with fewer allocations (docs/performance.md).
	server.Register("/mutate", pinhook.WithDeadlines(pinhook.WithBodyBudget(
		pinhook.Serve(handler, log.WithName("admission")), admissionMetrics, log.WithName("admission")),
		pinhook.DefaultReadTimeout, pinhook.DefaultWriteTimeout))

	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	var draining atomic.Bool
	started := server.StartedChecker()
	if err := mgr.AddReadyzCheck("webhook", func(r *http.Request) error {
		if draining.Load() {
			return errors.New("shutting down")
		}
		select {
		case <-certsReady:
		default:
			return errors.New("waiting for the serving certificate in --cert-dir (--cert-secret " + opts.CertSecret + ")")
		}
		return started(r)
	}); err != nil {
		return err
	}
	go func() {
		select {
		case <-mgrCtx.Done(): // the manager failed on its own
			return
		case <-ctx.Done():
		}
		draining.Store(true)
		log.Info("shutting down: not ready, then draining", "delay", opts.ShutdownDelay.String())
		select {
		case <-mgrCtx.Done():
		case <-time.After(opts.ShutdownDelay):
		}
		stop()
	}()
	log.Info("starting", "version", version, "config", opts.ConfigPath, "port", opts.Port)
	return mgr.Start(mgrCtx)
}

// serveWhenReady adds the webhook server to the manager once its
// certificate is in --cert-dir: at once when the files come from elsewhere
// (cert-manager, the chart), else when internal/certs has written them, as
// the server's certwatcher reads them at start. The channel is closed then.
func serveWhenReady(ctx context.Context, mgr manager.Manager, server webhook.Server, opts *options, log logr.Logger) (<-chan struct{}, error) {
	if opts.CertSecret == "" {
		ready := make(chan struct{})
		close(ready)
		return ready, mgr.Add(server)
	}
	ready, err := certs.Add(ctx, mgr, certs.Options{
		Secret:        types.NamespacedName{Namespace: opts.StateNamespace, Name: opts.CertSecret},
		WebhookConfig: opts.WebhookConfigName,
		DNSName:       opts.CertDNSName,
		CertDir:       opts.CertDir,
		Log:           log.WithName("certs"),
	})
	if err != nil {
		return nil, err
	}
	served := make(chan struct{})
	go func() {
		select {
		case <-ready:
		case <-ctx.Done():
			return
		}
		// Fails only once the manager is stopping.
		if err := mgr.Add(server); err != nil {
			log.Error(err, "cannot start the webhook server")
			return
		}
		close(served)
	}()
	return served, nil
}

// namespaceGate is the admission's namespace gate (internal/nsgate): a
// metadata-only Namespace informer of its own, run by the manager on every
// replica, and live GETs through the manager's API reader.
func namespaceGate(mgr manager.Manager, restCfg *rest.Config, label string, log logr.Logger) (*nsgate.Gate, error) {
	c, err := nsgate.NewCache(restCfg, cache.Options{Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper()})
	if err != nil {
		return nil, fmt.Errorf("the namespace gate: %w", err)
	}
	key, value, _ := strings.Cut(label, "=") // checked by Validate
	g := nsgate.New(nsgate.Options{Cache: c, Reader: mgr.GetAPIReader(), Label: key, Value: value, Log: log})
	return g, mgr.Add(g)
}

func ptr[T any](v T) *T { return &v }
