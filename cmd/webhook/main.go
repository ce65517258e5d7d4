// Command image-pin-webhook is the admission webhook server: it wires the
// config watcher, registries, resolver and admission handler into a
// controller-runtime manager. The subcommands check and resolve
// (internal/cli) share the binary.
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
	"sync/atomic"
	"syscall"
	"time"

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
	// flag.CommandLine, because controller-runtime binds --kubeconfig there.
	opts := newOptions()
	opts.AddFlags(flag.CommandLine)
	flag.Parse()
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
	mgr, err := ctrl.NewManager(restCfg, manager.Options{
		Metrics:                 metricsserver.Options{BindAddress: opts.MetricsAddr, TLSOpts: []func(*tls.Config){tlsMin}},
		HealthProbeBindAddress:  opts.ProbeAddr,
		GracefulShutdownTimeout: ptr(30 * time.Second),
		WebhookServer: webhook.NewServer(webhook.Options{
			Port:    opts.Port,
			CertDir: opts.CertDir,
			TLSOpts: append([]func(*tls.Config){tlsMin}, admissionTLS...),
		}),
	})
	if err != nil {
		return fmt.Errorf("manager: %w", err)
	}

	// The manager's context outlives ctx by the drain. Cloud credentials
	// (aws:, gcp:, azure:) refresh in the background until it ends.
	mgrCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	creds := credentials.New(credentials.WithSecretReader(mgr.GetAPIReader()), credentials.WithContext(mgrCtx),
		credentials.WithLogger(log.WithName("credentials")))
	defer creds.Close()
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

	stateOpts, err := setupState(mgr, restCfg, opts, watcher.Current, log)
	if err != nil {
		return err
	}
	pinhook.NewBuildInfo(metrics.Registry, version)
	handler := pinhook.NewHandler(watcher.Current, resolver.New(append(stateOpts, resolver.WithMetrics(resolver.NewMetrics(metrics.Registry)))...),
		pinhook.WithOwnNamespace(os.Getenv("POD_NAMESPACE")),
		pinhook.WithHandlerMetrics(pinhook.NewMetrics(metrics.Registry)),
		pinhook.WithLogger(log.WithName("admission")),
	)
	mgr.GetWebhookServer().Register("/mutate", pinhook.WithDeadlines(
		&webhook.Admission{Handler: handler, RecoverPanic: ptr(true)}, pinhook.DefaultReadTimeout, pinhook.DefaultWriteTimeout))

	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
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

func ptr[T any](v T) *T { return &v }
