package main

import (
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/image-pin/image-pin-webhook/config"
	"github.com/image-pin/image-pin-webhook/registries"
	"github.com/image-pin/image-pin-webhook/state"
)

// With leader election on (--state cluster), a Runnable that does not say
// otherwise runs on the leader alone: a follower would then never reload
// its config. Every runnable run() adds says so, but the refresher.
func TestEveryRunnableButTheRefresherRunsOnEveryReplica(t *testing.T) {
	for name, r := range map[string]any{
		"the config watcher": &config.Watcher{},
		"the pinger":         &registries.Pinger{},
		"the records' store": &state.Cluster{},
	} {
		le, ok := r.(manager.LeaderElectionRunnable)
		if !ok || le.NeedLeaderElection() {
			t.Errorf("%s runs on the leader alone", name)
		}
	}
	if !(&state.Refresher{}).NeedLeaderElection() {
		t.Error("the refresher runs on every replica")
	}
}
