package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/image-pin/image-pin-webhook/test/cluster"
)

// intList is a comma-separated flag of numbers.
type intList []int

func (l *intList) String() string {
	return strings.Trim(strings.Join(strings.Fields(fmt.Sprint([]int(*l))), ","), "[]")
}

func (l *intList) Set(v string) error {
	*l = nil
	for _, f := range strings.Split(v, ",") {
		var n int
		if _, err := fmt.Sscan(f, &n); err != nil || n < 1 {
			return fmt.Errorf("%q is not a positive number", f)
		}
		*l = append(*l, n)
	}
	return nil
}

// benchStateNamespace holds the records of the --state cluster runs.
const benchStateNamespace = "image-pin-bench"

// stateCompare runs the warm workloads at 8 clients on --state memory and
// on --state cluster against one real API server with the chart's CRD,
// each pair back to back (the order swapped in the second round, so that
// neither mode always runs on a warmer machine), and prints them side by
// side with the record writes each run made.
func (e *env) stateCompare(count int, containersList []int) error {
	ctrllog.SetLogger(logr.Discard()) // envtest logs through controller-runtime
	fmt.Fprintln(os.Stderr, "starting kube-apiserver and etcd with the ImageResolution CRD")
	api := &envtest.Environment{CRDDirectoryPaths: []string{filepath.Join(cluster.ChartDir(), "crds")}, ErrorIfCRDPathMissing: true}
	cfg, err := api.Start()
	if err != nil {
		return err
	}
	defer func() { _ = api.Stop() }()
	kubeconfig := filepath.Join(e.dir, "state-kubeconfig")
	if err := cluster.WriteKubeconfig(cfg, kubeconfig); err != nil {
		return err
	}
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: benchStateNamespace}}); err != nil {
		return err
	}
	const clients = 8
	fmt.Println("`--state memory` against `--state cluster` (records in a real API server with the CRD; both modes on the same API server, back to back), warm, cache_ttl 5m:")
	fmt.Println()
	fmt.Println("| workload | --state | clients | admissions | admissions/s | p50 | p90 | p99 | record writes |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	for round, modes := range [][]string{{"memory", "cluster"}, {"cluster", "memory"}} {
		for _, containers := range containersList {
			for _, mode := range modes {
				if err := e.stateWorkload(fmt.Sprintf("Deployment, %d containers, round %d", containers, round+1), mode, kubeconfig, containers, clients, count); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// stateWorkload runs one warm workload on one --state and prints its row.
func (e *env) stateWorkload(name, mode, kubeconfig string, containers, clients, count int) error {
	w, err := e.start(launch{ttl: "5m", clients: clients, kubeconfig: kubeconfig, metrics: true,
		args: []string{"--state", mode, "--state-namespace", benchStateNamespace}})
	if err != nil {
		return err
	}
	defer w.stop()
	if got := scrape(w.Metrics, fmt.Sprintf(`image_pin_state{backend="%s"}`, mode)); got != 1 {
		return fmt.Errorf("%s: the webhook started with --state %s does not report image_pin_state{backend=%q} 1", name, mode, mode)
	}
	st, err := e.measure(w, containers, clients, count, true)
	if err != nil {
		return fmt.Errorf("%s, --state %s: %w", name, mode, err)
	}
	writes := 0.0
	for _, res := range []string{"created", "updated", "used"} {
		writes += scrape(w.Metrics, fmt.Sprintf(`image_pin_record_writes_total{result="%s"}`, res))
	}
	fmt.Printf("| %s | %s | %d | %d | %.0f | %s | %s | %s | %.0f |\n", name, mode, clients, count, st.rate, st.pct(0.5), st.pct(0.9), st.pct(0.99), writes)
	return nil
}

// scrape sums the series of a metric whose line starts with prefix.
func scrape(port int, prefix string) float64 {
	v, _ := cluster.MetricSum(port, prefix)
	return v
}
