package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/image-pin/image-pin-webhook/test/cluster"
)

// stateNamespace holds the records, as the chart's release namespace does.
const stateNamespace = "image-pin-system"

// startReplica starts one webhook process on --state cluster with a
// serving certificate of its own, logging to a file it names.
func startReplica(bin, replica, config, certDir, kubeconfig string, authority *cluster.CA) (*cluster.Webhook, string, error) {
	if err := authority.Issue(certDir); err != nil {
		return nil, "", err
	}
	logPath := filepath.Join(os.TempDir(), "image-pin-demo-webhook-"+replica+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, "", err
	}
	wh, err := cluster.StartWebhook(cluster.WebhookOptions{Binary: bin, Config: config, CertDir: certDir, Kubeconfig: kubeconfig, Metrics: true,
		Args:   []string{"--state", "cluster", "--state-namespace", stateNamespace, "--shutdown-delay", "0s"},
		Env:    []string{"POD_NAMESPACE=" + stateNamespace},
		Output: logFile})
	if err != nil {
		return nil, "", fmt.Errorf("replica %s: %w (log: %s)", replica, err, logPath)
	}
	return wh, logPath, nil
}

// secondReplica moves demo/web:latest in the registry, starts replica 2,
// points the webhook configuration at it and shows that it pins the
// digest replica 1 stored, from the record, not the one the tag has now.
func secondReplica(ctx context.Context, c client.Client, kubectl func(...string) (string, error),
	start func(string) (*cluster.Webhook, string, error), mwc *admissionregistrationv1.MutatingWebhookConfiguration,
	first *cluster.Webhook, r string, reg *cluster.Registry) (*cluster.Webhook, string, error) {
	moved, err := reg.Push("demo/web:latest")
	if err != nil {
		return nil, "", err
	}
	step("demo/web:latest moved in the registry (to " + shortDigest(moved) + "); starting replica 2 of image-pin-webhook (--state cluster, a port and certificate of its own)")
	second, logPath, err := start("2")
	if err != nil {
		return nil, "", err
	}
	ok := false
	defer func() {
		if !ok {
			second.Stop(time.Minute)
		}
	}()
	// Replica 2 answers from its informer: wait until it holds every record replica 1 sees.
	want := metric(first.Metrics, "image_pin_records{")
	for deadline := time.Now().Add(30 * time.Second); metric(second.Metrics, "image_pin_records{") < want; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			return nil, "", fmt.Errorf("replica 2 sees %.0f records after 30s, replica 1 %.0f (log: %s)", metric(second.Metrics, "image_pin_records{"), want, logPath)
		}
	}
	step("pointing the webhook configuration at replica 2; a server-side dry-run Pod of demo/web:latest through it")
	var cur admissionregistrationv1.MutatingWebhookConfiguration
	if err := c.Get(ctx, client.ObjectKeyFromObject(mwc), &cur); err != nil {
		return nil, "", err
	}
	url := second.URL()
	for i := range cur.Webhooks {
		cur.Webhooks[i].ClientConfig.URL = &url
	}
	if err := c.Update(ctx, &cur); err != nil {
		return nil, "", err
	}
	image := r + "/demo/web:latest"
	args := []string{"-n", "demo", "run", "via-replica-2", "--image=" + image, "--restart=Never", "--dry-run=server", "-o", "jsonpath={.spec.containers[0].image}"}
	fmt.Printf("$ kubectl %s\n", strings.ReplaceAll(strings.Join(args, " "), r, "$REGISTRY"))
	var got string
	// The API server picks the new URL up within moments; until it does,
	// replica 1 answers (with the same digest), which is not what is shown.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		before := metric(second.Metrics, "image_pin_admissions_total{")
		if got, err = kubectl(args...); err != nil {
			return nil, "", err
		}
		if metric(second.Metrics, "image_pin_admissions_total{") > before {
			break
		}
		if time.Now().After(deadline) {
			return nil, "", fmt.Errorf("after 30s the API server still does not call replica 2 (log: %s)", logPath)
		}
	}
	fmt.Println(shortenAll(strings.ReplaceAll(got, r, "$REGISTRY")))
	var web appsv1.Deployment
	if err := c.Get(ctx, client.ObjectKey{Namespace: "demo", Name: "web"}, &web); err != nil {
		return nil, "", err
	}
	pinned1 := web.Spec.Template.Spec.Containers[0].Image
	_, d1, _ := strings.Cut(pinned1, "@")
	_, d2, _ := strings.Cut(got, "@")
	fmt.Println()
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tREPLICA 1 (deployment/web)\tREPLICA 2 (dry-run Pod)\tTHE TAG IN THE REGISTRY NOW")
	fmt.Fprintf(tw, "$REGISTRY/demo/web:latest\t%s\t%s\t%s\n", shortDigest(d1), shortDigest(d2), shortDigest(moved))
	_ = tw.Flush()
	if d1 == "" || d1 != d2 {
		return nil, "", fmt.Errorf("replica 2 pinned %s to %q, replica 1 to %q: the replicas disagree", image, d2, d1)
	}
	fmt.Print("\nBoth replicas pin the digest in the record until it changes (a kubectl rollout restart re-resolves it).\n\n")
	ok = true
	return second, logPath, nil
}

// metric sums the series of a metric whose line starts with prefix on a
// webhook's /metrics port; 0 when it does not answer.
func metric(port int, prefix string) float64 {
	v, _ := cluster.MetricSum(port, prefix)
	return v
}

// shortDigest is sha256: and 12 hex digits, as elsewhere in the demo.
func shortDigest(d string) string {
	if len(d) > len("sha256:")+12 {
		return d[:len("sha256:")+12] + "…"
	}
	return d
}
