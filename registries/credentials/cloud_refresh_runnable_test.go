package credentials_test

import (
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/image-pin/image-pin-webhook/registries/credentials"
)

// Leader election must not stop a follower's refreshes: every replica
// answers admissions with its own tokens.
func TestTheCloudRefresherIsARunnableThatRunsOnEveryReplica(t *testing.T) {
	var r any = credentials.New().CloudRefresher()
	if _, ok := r.(manager.Runnable); !ok {
		t.Fatal("the cloud refresher is not a manager.Runnable")
	}
	le, ok := r.(manager.LeaderElectionRunnable)
	if !ok || le.NeedLeaderElection() {
		t.Fatal("the cloud refresher would run on the leader only")
	}
}
