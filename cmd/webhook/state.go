package main

import (
	"fmt"
	"os"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/image-pin/image-pin-webhook/api/v1alpha1"
	"github.com/image-pin/image-pin-webhook/config"
	"github.com/image-pin/image-pin-webhook/resolver"
	"github.com/image-pin/image-pin-webhook/state"
)

// Values of --state.
const (
	stateCluster = "cluster"
	stateMemory  = "memory"
)

// defaultStateNamespace is --state-namespace's default: the pod's
// namespace, else image-pin-system.
func defaultStateNamespace() string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	return "image-pin-system"
}

// setupState wires --state: with cluster, and the CRD served, a store of
// ImageResolution records in --state-namespace behind the resolver; else
// (memory, or no CRD: logged once) the resolver's memory alone.
func setupState(mgr manager.Manager, restCfg *rest.Config, opts *options, current func() *config.Config, log logr.Logger) ([]resolver.Option, error) {
	m := state.NewMetrics(metrics.Registry)
	if opts.State == stateMemory {
		m.Backend(stateMemory)
		return nil, nil
	}
	gvk := v1alpha1.GroupVersion().WithKind("ImageResolution")
	if _, err := mgr.GetRESTMapper().RESTMapping(schema.GroupKind{Group: gvk.Group, Kind: gvk.Kind}, gvk.Version); err != nil {
		log.Info("resolution records are kept in memory only: the ImageResolution CRD is not served (install charts/image-pin-webhook/crds, or pass --state=memory)",
			"error", err.Error())
		m.Backend(stateMemory)
		return nil, nil
	}
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	c, err := client.New(restCfg, client.Options{Scheme: scheme, Mapper: mgr.GetRESTMapper()})
	if err != nil {
		return nil, fmt.Errorf("--state=cluster: %w", err)
	}
	informers, err := cache.New(restCfg, cache.Options{
		Scheme: scheme, Mapper: mgr.GetRESTMapper(),
		DefaultNamespaces: map[string]cache.Config{opts.StateNamespace: {}},
		DefaultTransform:  cache.TransformStripManagedFields(), // bounds the informer's memory per record
	})
	if err != nil {
		return nil, fmt.Errorf("--state=cluster: %w", err)
	}
	store := state.NewCluster(state.Options{
		Namespace: opts.StateNamespace, Client: c, Reader: c, Cache: informers, Metrics: m,
		Log: log.WithName("state"),
		Limits: func() state.Limits {
			p := current().Policy
			return state.Limits{RefreshWindow: p.RefreshWindow, RecordRetention: p.RecordRetention, MaxRecordsPerNamespace: p.MaxRecordsPerNamespace}
		},
	})
	if err := mgr.Add(store); err != nil {
		return nil, err
	}
	m.Backend(stateCluster)
	log.Info("resolution records are kept in the cluster", "namespace", opts.StateNamespace)
	return []resolver.Option{resolver.WithStore(store)}, nil
}
