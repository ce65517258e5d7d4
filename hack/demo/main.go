// Command demo runs image-pin-webhook locally: a real kube-apiserver and
// etcd (envtest), kube-controller-manager, a distribution registry with
// sample images, and the webhook; then it applies sample workloads, prints
// each image as written and as stored, and shows with kubectl the
// ReplicaSets, Jobs and Pods the controllers made from them, the resolution
// records (kubectl get imgres), and a second replica that answers the
// first one's digest from the record after the tag moved. `make demo` runs
// it; DEMO_ONCE=1 exits after the tables.
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/image-pin/image-pin-webhook/test/cluster"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func step(msg string) { fmt.Println("==> " + msg) }

func run() error {
	assets, bin := os.Getenv("KUBEBUILDER_ASSETS"), os.Getenv("IMAGE_PIN_WEBHOOK_BIN")
	if assets == "" || bin == "" {
		return fmt.Errorf("run it with `make demo`, which sets KUBEBUILDER_ASSETS and IMAGE_PIN_WEBHOOK_BIN")
	}
	dir, err := os.MkdirTemp("", "image-pin-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	step("starting kube-apiserver and etcd, with the chart's ImageResolution CRD")
	env := &envtest.Environment{CRDDirectoryPaths: []string{filepath.Join(cluster.ChartDir(), "crds")}, ErrorIfCRDPathMissing: true}
	cfg, err := env.Start()
	if err != nil {
		return err
	}
	defer func() { _ = env.Stop() }()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := cluster.WriteKubeconfig(cfg, kubeconfig); err != nil {
		return err
	}

	step("starting kube-controller-manager (no scheduler or kubelet: Pods stay Pending)")
	kcmLog := filepath.Join(os.TempDir(), "image-pin-demo-kube-controller-manager.log")
	kcmOut, err := os.Create(kcmLog)
	if err != nil {
		return err
	}
	caFile := filepath.Join(dir, "apiserver-ca.pem")
	if err := os.WriteFile(caFile, cfg.CAData, 0o644); err != nil {
		return err
	}
	kcm, err := cluster.StartControllerManager(cluster.ControllerManagerOptions{
		Binary: filepath.Join(assets, "kube-controller-manager"), Kubeconfig: kubeconfig,
		ServiceAccountKey: filepath.Join(env.ControlPlane.APIServer.CertDir, "sa-signer.key"), RootCA: caFile, Output: kcmOut,
	})
	if err != nil {
		return fmt.Errorf("%w (log: %s)", err, kcmLog)
	}
	defer kcm.Stop(20 * time.Second)

	step("starting a registry and pushing sample images")
	reg, err := cluster.StartRegistry(filepath.Join(assets, "registry"), filepath.Join(dir, "registry"), cluster.RegistryOptions{})
	if err != nil {
		return err
	}
	defer reg.Stop()
	for _, rt := range []string{"demo/api:1.3.0", "demo/api:1.4.0", "demo/api:1.4.2", "demo/api:v1.4.7", "demo/api:1.5.0", "demo/api:2.0.0-rc1",
		"demo/web:latest", "demo/web:latest", "demo/init:1", "demo/nginx:1.27"} {
		if _, err := reg.Push(rt); err != nil { // web:latest twice: the tag moves
			return err
		}
	}
	if _, err := reg.PushIndex("demo/multi:1"); err != nil {
		return err
	}

	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return err
	}
	ctx := context.Background()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: stateNamespace}}); err != nil {
		return err
	}

	step("starting image-pin-webhook (--state cluster: answers are ImageResolution records in " + stateNamespace + ")")
	authority, err := cluster.NewCA()
	if err != nil {
		return err
	}
	configPath := filepath.Join(dir, "config.yaml")
	config := fmt.Sprintf(`registries:
  - name: demo registry
    api_url: http://%s
    prefix: %s
    ping: yes
policy:
  mode: pin
  on_error: ignore
  cache_ttl: 5m
  resolve_timeout: 8s
`, reg.Host, reg.Host)
	if err := os.WriteFile(configPath, []byte(config), 0o644); err != nil {
		return err
	}
	start := func(replica string) (*cluster.Webhook, string, error) {
		return startReplica(bin, replica, configPath, filepath.Join(dir, "certs-"+replica), kubeconfig, authority)
	}
	wh, logPath, err := start("1")
	if err != nil {
		return err
	}
	defer wh.Stop(time.Minute)

	rendered, err := cluster.Render("image-pin-webhook", "image-pin-system", nil)
	if err != nil {
		return err
	}
	mwc, err := cluster.LoopbackWebhook(rendered, wh.URL(), authority.CertPEM)
	if err != nil {
		return err
	}
	if err := c.Create(ctx, mwc); err != nil {
		return err
	}
	step("labelling namespace demo with image-pin.io/enabled=true (namespace other is not opted in)")
	for _, ns := range []*corev1.Namespace{
		{ObjectMeta: metav1.ObjectMeta{Name: "demo", Labels: map[string]string{"image-pin.io/enabled": "true"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "other"}},
	} {
		if err := c.Create(ctx, ns); err != nil {
			return err
		}
	}
	time.Sleep(time.Second) // the API server picks the new webhook configuration up

	step("applying sample workloads")
	r := reg.Host
	rows, err := apply(ctx, c, r)
	if err != nil {
		return err
	}
	fmt.Println()
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKLOAD\tCONTAINER\tAS WRITTEN\tAS STORED")
	for _, row := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", row[0], row[1], strings.ReplaceAll(row[2], r, "$REGISTRY"), shorten(strings.ReplaceAll(row[3], r, "$REGISTRY")))
	}
	_ = tw.Flush()
	fmt.Printf("\n$REGISTRY is %s; digests are shortened here, stored in full.\n", r)

	kubectl := func(args ...string) (string, error) {
		cmd := exec.Command(filepath.Join(assets, "kubectl"), args...)
		cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, out)
		}
		return string(out), nil
	}
	fmt.Println()
	step("kubectl -n demo create job nightly-now --from=cronjob/nightly")
	if _, err := kubectl("-n", "demo", "create", "job", "nightly-now", "--from=cronjob/nightly"); err != nil {
		return err
	}
	step("waiting for the controllers' ReplicaSets, Jobs and Pods")
	if err := waitForPods(ctx, c); err != nil {
		return err
	}
	for _, q := range [][]string{
		{"get", "replicasets,jobs", "-o", "custom-columns=KIND:.kind,NAME:.metadata.name,OWNER:.metadata.ownerReferences[0].name,IMAGES:.spec.template.spec.containers[*].image"},
		{"get", "pods", "-o", "custom-columns=POD:.metadata.name,OWNER:.metadata.ownerReferences[0].name,STATUS:.status.phase,IMAGES:.spec.containers[*].image"},
	} {
		fmt.Printf("\n$ kubectl -n demo %s\n", strings.Join(q[:2], " "))
		out, err := kubectl(append([]string{"-n", "demo"}, q...)...)
		if err != nil {
			return err
		}
		fmt.Print(shortenAll(strings.ReplaceAll(out, r, "$REGISTRY")))
	}
	fmt.Printf("\n$ kubectl -n %s get imgres\n", stateNamespace)
	out, err := kubectl("-n", stateNamespace, "get", "imgres")
	if err != nil {
		return err
	}
	fmt.Print(strings.ReplaceAll(out, r, "$REGISTRY"))
	fmt.Println()

	wh2, logPath2, err := secondReplica(ctx, c, kubectl, start, mwc, wh, r, reg)
	if err != nil {
		return err
	}
	defer wh2.Stop(time.Minute)

	step("image-pin-webhook doctor: does the API server call the webhook, and what does it answer?")
	doc := exec.Command(bin, "doctor", "--kubeconfig", kubeconfig, "--webhook-config-name", mwc.Name, "--namespace", "demo", r+"/demo/api:1.4.0")
	docOut, err := doc.CombinedOutput()
	fmt.Print(shortenAll(strings.ReplaceAll(string(docOut), r, "$REGISTRY")))
	if err != nil {
		return fmt.Errorf("doctor: %w", err)
	}
	if os.Getenv("DEMO_ONCE") == "1" {
		return nil
	}
	fmt.Printf("\nEverything keeps running. Try your own with the same kubectl:\n  export KUBECONFIG=%s PATH=%s:$PATH\n  kubectl -n demo create deployment mine --image=%s/demo/api:1.4.0\n  kubectl -n demo get replicasets,pods -l app=mine -o wide\n  kubectl -n demo rollout restart deployment mine   # re-pins to the tag's current digest, in a new ReplicaSet\n  kubectl -n demo rollout undo deployment mine      # the previous pin, in the previous ReplicaSet\n  kubectl -n demo diff --server-side -f <(kubectl -n demo create deployment mine --image=%s/demo/api:1.4.0 --dry-run=client -o yaml)   # no drift\nThe webhook configuration calls replica 2; replica 1 keeps running.\nWebhook logs: %s (replica 1), %s (replica 2)\nRecords: kubectl -n %s get imgres\nkube-controller-manager log: %s\nPress Ctrl-C to stop and clean up.\n", kubeconfig, assets, r, r, logPath, logPath2, stateNamespace, kcmLog)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	step("stopping")
	return nil
}

var digest = regexp.MustCompile(`@sha256:([0-9a-f]{12})[0-9a-f]{52}`)

// shortenAll shortens every digest in kubectl's output.
func shortenAll(out string) string { return digest.ReplaceAllString(out, "@sha256:$1…") }

// waitForPods waits until the controllers have made a Pod for every
// Deployment, StatefulSet and Job in namespace demo that should have one.
func waitForPods(ctx context.Context, c client.Client) error {
	want := map[string]bool{"web": true, "api": true, "skipped": true, "multi-arch": true, "nightly-now": true}
	deadline := time.Now().Add(60 * time.Second)
	for {
		var pods corev1.PodList
		if err := c.List(ctx, &pods, client.InNamespace("demo")); err != nil {
			return err
		}
		seen := map[string]bool{}
		for _, p := range pods.Items {
			for _, ref := range p.OwnerReferences {
				name := ref.Name
				if ref.Kind == "ReplicaSet" {
					name = name[:strings.LastIndex(name, "-")] // deployment name-hash
				}
				seen[name] = true
			}
		}
		missing := []string{}
		for w := range want {
			if !seen[w] {
				missing = append(missing, w)
			}
		}
		if len(missing) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after 60s the controllers have made no Pod for %s", strings.Join(missing, ", "))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func shorten(image string) string {
	if i := strings.Index(image, "@sha256:"); i >= 0 && len(image) > i+8+12 {
		return image[:i+8+12] + "…"
	}
	return image
}

// apply creates the sample workloads and returns, per container, the image
// as written and as the API server stored it.
func apply(ctx context.Context, c client.Client, r string) ([][4]string, error) {
	// Each workload its own app label, so that no controller adopts another's Pods.
	tmpl := func(app string, containers ...corev1.Container) corev1.PodTemplateSpec {
		return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app}}, Spec: corev1.PodSpec{Containers: containers}}
	}
	sel := func(app string) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}
	}
	web := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "web"},
		Spec: appsv1.DeploymentSpec{Selector: sel("web"), Template: tmpl("web", corev1.Container{Name: "web", Image: r + "/demo/web"})}}
	api := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "api", Annotations: map[string]string{"image-pin.io/constraint": "~1.4"}},
		Spec: appsv1.DeploymentSpec{Selector: sel("api"), Template: tmpl("api", corev1.Container{Name: "api", Image: r + "/demo/api:1.4.0"})}}
	multi := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "multi-arch"},
		Spec: appsv1.StatefulSetSpec{Selector: sel("multi-arch"), Template: tmpl("multi-arch", corev1.Container{Name: "db", Image: r + "/demo/multi:1"})}}
	jobTmpl := tmpl("nightly", corev1.Container{Name: "report", Image: r + "/demo/api:1.5.0"})
	jobTmpl.Spec.RestartPolicy = corev1.RestartPolicyNever
	jobTmpl.Spec.InitContainers = []corev1.Container{{Name: "init", Image: r + "/demo/init:1"}}
	jobTmpl.Labels = nil
	cron := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "nightly"},
		Spec: batchv1.CronJobSpec{Schedule: "0 2 * * *", JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: jobTmpl}}}}
	skipped := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "skipped", Labels: map[string]string{"image-pin.io/skip": "true"}},
		Spec: appsv1.DeploymentSpec{Selector: sel("skipped"), Template: tmpl("skipped", corev1.Container{Name: "nginx", Image: r + "/demo/nginx:1.27"})}}
	other := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "other", Name: "not-opted-in"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "nginx", Image: r + "/demo/nginx:1.27"}}}}
	external := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "unconfigured-registry"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "quay.io/example/app:1"}}}}

	var rows [][4]string
	add := func(obj client.Object, name string, written []corev1.Container, stored func() []corev1.Container) error {
		if err := c.Create(ctx, obj); err != nil {
			return err
		}
		for i, ctr := range stored() {
			rows = append(rows, [4]string{name, ctr.Name, written[i].Image, ctr.Image})
		}
		return nil
	}
	copyOf := func(cs []corev1.Container) []corev1.Container { return append([]corev1.Container(nil), cs...) }
	steps := []struct {
		obj     client.Object
		name    string
		written []corev1.Container
		stored  func() []corev1.Container
	}{
		{web, "deployment/web", copyOf(web.Spec.Template.Spec.Containers), func() []corev1.Container { return web.Spec.Template.Spec.Containers }},
		{api, "deployment/api (constraint ~1.4)", copyOf(api.Spec.Template.Spec.Containers), func() []corev1.Container { return api.Spec.Template.Spec.Containers }},
		{multi, "statefulset/multi-arch", copyOf(multi.Spec.Template.Spec.Containers), func() []corev1.Container { return multi.Spec.Template.Spec.Containers }},
		{cron, "cronjob/nightly", append(copyOf(jobTmpl.Spec.InitContainers), jobTmpl.Spec.Containers...), func() []corev1.Container {
			s := cron.Spec.JobTemplate.Spec.Template.Spec
			return append(copyOf(s.InitContainers), s.Containers...)
		}},
		{skipped, "deployment/skipped (skip label)", copyOf(skipped.Spec.Template.Spec.Containers), func() []corev1.Container { return skipped.Spec.Template.Spec.Containers }},
		{other, "pod/not-opted-in (namespace other)", copyOf(other.Spec.Containers), func() []corev1.Container { return other.Spec.Containers }},
		{external, "pod/unconfigured-registry", copyOf(external.Spec.Containers), func() []corev1.Container { return external.Spec.Containers }},
	}
	for _, s := range steps {
		if err := add(s.obj, s.name, s.written, s.stored); err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return rows, nil
}
