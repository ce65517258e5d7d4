package envtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/image-pin/image-pin-webhook/api/v1alpha1"
	"github.com/image-pin/image-pin-webhook/test/cluster"
)

// TestMeasureInformerMemory is the informer measurement in
// docs/performance.md (IMAGE_PIN_MEASURE=1): 10,000 ImageResolution records
// (IMAGE_PIN_MEASURE_RECORDS) created straight in a state namespace, then
// one webhook process each on --state memory, on --state cluster with no
// record, and on --state cluster with the records; once its informer holds
// them all, its heap in use (go_memstats_heap_inuse_bytes) and its resident
// memory (VmRSS, and VmHWM: the most it ever held) are read.
func TestMeasureInformerMemory(t *testing.T) {
	if os.Getenv("IMAGE_PIN_MEASURE") != "1" {
		t.Skip("a measurement: IMAGE_PIN_MEASURE=1 runs it")
	}
	n := 10000
	if v := os.Getenv("IMAGE_PIN_MEASURE_RECORDS"); v != "" {
		fmt.Sscan(v, &n)
	}
	e := newStateEnv(t)
	empty := newStateEnv(t) // a state namespace with no record
	start := time.Now()
	createRecords(t, e, n)
	created := time.Since(start)

	fmt.Printf("informer memory: %d records (%d history entries each) created in %s\n", n, recordHistory, created.Round(time.Second))
	fmt.Println("| webhook | records in its informer | informer synced after | heap in use | VmRSS | VmHWM |")
	fmt.Println("|---|---|---|---|---|---|")
	for _, m := range []struct {
		name string
		env  *stateEnv
		args []string
		want int
	}{
		{"--state memory", empty, []string{"--state", "memory"}, 0},
		{"--state cluster, no record", empty, []string{"--state", "cluster", "--state-namespace", empty.stateNS}, 0},
		{fmt.Sprintf("--state cluster, %d records", n), e, []string{"--state", "cluster", "--state-namespace", e.stateNS}, n},
	} {
		w, synced := startMeasured(t, m.env, m.args, m.want)
		heap := replicaGauge(t, w, "go_memstats_heap_inuse_bytes ")
		rss, hwm := procStatus(t, w, "VmRSS:"), procStatus(t, w, "VmHWM:")
		fmt.Printf("| `%s` | %d | %s | %.1f MiB | %.1f MiB | %.1f MiB |\n", m.name, replicaGauge(t, w, "image_pin_records{"),
			synced.Round(time.Millisecond), float64(heap)/(1<<20), float64(rss)/1024, float64(hwm)/1024)
		w.Stop(20 * time.Second)
	}
}

// recordHistory is how many previous digests each measured record holds:
// the most a record keeps (v1alpha1.MaxHistory), so the measure is the
// informer's upper bound per record.
const recordHistory = v1alpha1.MaxHistory

// createRecords creates n records shaped as the webhook writes them, from
// 8 clients.
func createRecords(t *testing.T, e *stateEnv, n int) {
	t.Helper()
	var next atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				err := e.c.Create(cctx, measuredRecord(e, i))
				cancel()
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := firstErr.Load(); err != nil {
		t.Fatalf("creating %d records: %v", n, err)
	}
}

func hexOf(parts ...any) string {
	h := sha256.Sum256([]byte(fmt.Sprint(parts...)))
	return hex.EncodeToString(h[:])
}

// measuredRecord is record i: what the webhook stores for one digest
// query of an image in a team's namespace, with a full history.
func measuredRecord(e *stateEnv, i int) *v1alpha1.ImageResolution {
	hash := hexOf("query", i)
	repo := fmt.Sprintf("team-%d/service-%d", i%50, i)
	at := metav1.NewTime(time.Now().Add(-time.Hour).Truncate(time.Second))
	digest := "sha256:" + hexOf("digest", i)
	ir := &v1alpha1.ImageResolution{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.stateNS, Name: "q-" + hash[:40], Labels: map[string]string{"app.kubernetes.io/managed-by": "image-pin-webhook"}},
		Spec: v1alpha1.ImageResolutionSpec{Image: repo + ":1.2.3", Registry: "state plain", Repository: repo, Tag: "1.2.3", Strategy: "digest",
			Namespace: fmt.Sprintf("team-%d", i%50), QueryHash: hash},
		Status: v1alpha1.ImageResolutionStatus{Tag: "1.2.3", Digest: digest, ShortDigest: strings.TrimPrefix(digest, "sha256:")[:12],
			ResolvedAt: at, ConfirmedAt: at, LastUsed: &at},
	}
	for h := range recordHistory {
		ir.Status.History = append(ir.Status.History, v1alpha1.HistoryEntry{Tag: "1.2.3", Digest: "sha256:" + hexOf("old", i, h), Seen: at, Until: at})
	}
	return ir
}

// startMeasured starts a webhook with args (no webhook configuration
// calls it) and waits until its informer holds want records; it returns
// how long that took from the start of the process.
func startMeasured(t *testing.T, e *stateEnv, args []string, want int) (*cluster.Webhook, time.Duration) {
	t.Helper()
	certDir := filepath.Join(t.TempDir(), "serving")
	if err := s.authority.Issue(certDir); err != nil {
		t.Fatal(err)
	}
	out := &lockedBuffer{}
	start := time.Now()
	w, err := cluster.StartWebhook(cluster.WebhookOptions{
		Binary: os.Getenv("IMAGE_PIN_WEBHOOK_BIN"), Config: e.config, CertDir: certDir, Kubeconfig: s.kubecfg, Metrics: true,
		Args: append(args, "--shutdown-delay", "0s"), Env: []string{"POD_NAMESPACE=" + ownNamespace, "E2E_REGISTRY_CREDS=" + regUser + ":" + regPass},
		Output: out,
	})
	if err != nil {
		t.Fatalf("webhook %v: %v; it printed:\n%s", args, err, out.String())
	}
	t.Cleanup(func() { w.Stop(20 * time.Second) })
	// Ten thousand records take a while to list on a busy machine: this
	// waits longer than awaitRecords, and fails only when nothing moves.
	for last, stuck := -1, 0; want > 0; time.Sleep(100 * time.Millisecond) {
		got := replicaGauge(t, w, "image_pin_records{")
		if got >= want {
			break
		}
		if got == last {
			stuck++
		} else {
			last, stuck = got, 0
		}
		if stuck == 1200 {
			t.Fatalf("the informer has held %d of %d records for 2 minutes; it printed:\n%s", got, want, out.String())
		}
	}
	return w, time.Since(start)
}

// procStatus is a /proc/<pid>/status field of w in KiB.
func procStatus(t *testing.T, w *cluster.Webhook, field string) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", w.Cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, field) {
			var kib int
			fmt.Sscan(strings.TrimSpace(strings.TrimPrefix(line, field)), &kib)
			return kib
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, w.Cmd.Process.Pid)
	return 0
}
