package main

import (
	"fmt"
	"os"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/discovery"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
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

// leaseName is the leader-election Lease in --state-namespace: the leader
// refreshes the records ahead of use and deletes the unused ones.
const leaseName = "image-pin-webhook"

// defaultStateNamespace is --state-namespace's default: the pod's
// namespace, else image-pin-system.
func defaultStateNamespace() string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	return "image-pin-system"
}

// stateSetup is what --state decided before the manager was made.
type stateSetup struct {
	// cluster: --state cluster and the CRD served; else the webhook keeps
	// answers in memory, and runs no leader election.
	cluster bool
	why     error // why not, when --state cluster was asked
}

// decideState looks, once at start, whether the API server serves the
// ImageResolution CRD, when --state cluster asks for it.
func decideState(restCfg *rest.Config, opts *options) stateSetup {
	if opts.State == stateMemory {
		return stateSetup{}
	}
	dc, err := discovery.NewDiscoveryClientForConfig(restCfg)
	if err != nil {
		return stateSetup{why: err}
	}
	gv := v1alpha1.GroupVersion()
	list, err := dc.ServerResourcesForGroupVersion(gv.String())
	if err != nil {
		return stateSetup{why: err}
	}
	for _, r := range list.APIResources {
		if r.Name == "imageresolutions" {
			return stateSetup{cluster: true}
		}
	}
	return stateSetup{why: fmt.Errorf("%s serves no imageresolutions", gv)}
}

// managerOptions adds to mo what the records need: their types in the
// scheme (for their Events), and leader election on a Lease in
// --state-namespace. Every runnable but the refresher runs on every
// replica (each says NeedLeaderElection false); a replica that loses the
// Lease exits, as a kubebuilder manager does, and is restarted.
func (s stateSetup) managerOptions(mo *manager.Options, opts *options) error {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return err
	}
	mo.Scheme = scheme
	if s.cluster {
		mo.LeaderElection = true
		mo.LeaderElectionID = leaseName
		mo.LeaderElectionNamespace = opts.StateNamespace
		mo.LeaderElectionReleaseOnCancel = true // a rollout hands over at once, not after the lease expires
	}
	return nil
}

// setupState wires --state: with cluster, and the CRD served, a store of
// ImageResolution records in --state-namespace behind the resolver; else
// (memory, or no CRD: logged once) the resolver's memory alone. The
// returned function adds the leader's refresher once the resolver exists.
func setupState(mgr manager.Manager, restCfg *rest.Config, s stateSetup, opts *options, current func() *config.Config, log logr.Logger) ([]resolver.Option, func(*resolver.Resolver) error, error) {
	m := state.NewMetrics(metrics.Registry)
	none := func(*resolver.Resolver) error { return nil }
	if opts.State == stateMemory {
		m.Backend(stateMemory)
		return nil, none, nil
	}
	if !s.cluster {
		log.Info("resolution records are kept in memory only: the ImageResolution CRD is not served (install charts/image-pin-webhook/crds, or pass --state=memory)",
			"error", s.why.Error())
		m.Backend(stateMemory)
		return nil, none, nil
	}
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return nil, nil, err
	}
	if err := coordinationv1.AddToScheme(scheme); err != nil {
		return nil, nil, err
	}
	c, err := client.New(restCfg, client.Options{Scheme: scheme, Mapper: mgr.GetRESTMapper()})
	if err != nil {
		return nil, nil, fmt.Errorf("--state=cluster: %w", err)
	}
	informers, err := cache.New(restCfg, cache.Options{
		Scheme: scheme, Mapper: mgr.GetRESTMapper(),
		DefaultNamespaces: map[string]cache.Config{opts.StateNamespace: {}},
		DefaultTransform:  cache.TransformStripManagedFields(), // bounds the informer's memory per record
		ByObject: map[client.Object]cache.ByObject{
			// The refresh heartbeat alone, not the leader-election Lease
			// renewed every few seconds.
			&coordinationv1.Lease{}: {Field: fields.OneTermEqualSelector("metadata.name", state.HeartbeatLease)},
		},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("--state=cluster: %w", err)
	}
	store := state.NewCluster(state.Options{
		Namespace: opts.StateNamespace, Client: c, Reader: c, Cache: informers, Metrics: m,
		Log: log.WithName("state"),
		Limits: func() state.Limits {
			p := current().Policy
			return state.Limits{RefreshWindow: p.RefreshWindow, RecordRetention: p.RecordRetention, MaxRecordsPerNamespace: p.MaxRecordsPerNamespace, MaxRecords: p.MaxRecords}
		},
	})
	if err := mgr.Add(store); err != nil {
		return nil, nil, err
	}
	m.Backend(stateCluster)
	log.Info("resolution records are kept in the cluster", "namespace", opts.StateNamespace)
	addRefresher := func(res *resolver.Resolver) error {
		id, _ := os.Hostname()
		return mgr.Add(state.NewRefresher(state.RefresherOptions{
			Store: store, Resolver: res, Config: current, Events: mgr.GetEventRecorder("image-pin-webhook"),
			Log: log.WithName("refresh"), Identity: id,
		}))
	}
	return []resolver.Option{resolver.WithStore(store)}, addRefresher, nil
}
