package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Names doctor looks for; the webhook writes the annotation on every Pod it
// changes, and says "image-pin" in its warnings when it reports.
const (
	enabledLabel        = "image-pin.io/enabled"
	originalImagesKey   = "image-pin.io/original-images"
	defaultDoctorImage  = "registry.k8s.io/pause:3.10"
	defaultWebhookCfg   = "image-pin-webhook"
	defaultDoctorWait   = 15 * time.Second
	doctorPodNamePrefix = "image-pin-doctor-"
)

// Diagnosis is everything doctor decided; text and JSON render it, nothing
// else decides.
type Diagnosis struct {
	Namespace     string        `json:"namespace,omitempty"`
	WebhookConfig string        `json:"webhookConfiguration"`
	Image         string        `json:"image"`
	Called        bool          `json:"called"` // the API server called the webhook and it answered
	Latency       time.Duration `json:"latencyNanoseconds"`
	PinnedImage   string        `json:"pinnedImage,omitempty"`
	Warnings      []string      `json:"warnings,omitempty"`
	Denial        string        `json:"denial,omitempty"` // the webhook answered with a denial (on_error: fail)
	Cause         string        `json:"cause,omitempty"`  // why not, when not
	APIError      string        `json:"apiServerError,omitempty"`
}

func (d *Diagnosis) write(w io.Writer, asJSON bool) {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(d)
		return
	}
	fmt.Fprintf(w, "webhook configuration: %s\nnamespace: %s\nimage: %s\n", d.WebhookConfig, d.Namespace, d.Image)
	if d.Called {
		fmt.Fprintf(w, "OK: the API server called the webhook; it answered in %s\n", d.Latency.Round(time.Millisecond))
		if d.PinnedImage != "" {
			fmt.Fprintf(w, "pinned: %s\n", d.PinnedImage)
		}
		if d.Denial != "" {
			fmt.Fprintf(w, "denied: %s\n", d.Denial)
		}
	} else {
		fmt.Fprintf(w, "FAIL: %s\n", d.Cause)
		if d.APIError != "" {
			fmt.Fprintf(w, "API server: %s\n", d.APIError)
		}
	}
	for _, x := range d.Warnings {
		fmt.Fprintf(w, "warning: %s\n", x)
	}
}

// warnings collects the API server's warning headers of the dry run.
type warnings struct {
	mu  sync.Mutex
	got []string
}

func (w *warnings) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.got = append(w.got, text)
}

func runDoctor(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	ns := fs.String("namespace", "", "the namespace of the dry-run Pod (default: the first labelled "+enabledLabel+"=true)")
	cfgName := fs.String("webhook-config-name", defaultWebhookCfg, "the MutatingWebhookConfiguration to check")
	timeout := fs.Duration("timeout", defaultDoctorWait, "how long the whole check may take")
	output := fs.String("o", "text", "output: text or json")
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig (default: KUBECONFIG, ~/.kube/config or in-cluster)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: image-pin-webhook doctor [--namespace NS] [--webhook-config-name NAME] [--timeout 15s] [-o json] [IMAGE]")
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return ExitUsage
	}
	if *output != "text" && *output != "json" || len(pos) > 1 || *timeout <= 0 {
		fs.Usage()
		return ExitUsage
	}
	d := &Diagnosis{WebhookConfig: *cfgName, Namespace: *ns, Image: defaultDoctorImage}
	if len(pos) == 1 {
		d.Image = pos[0]
	}
	restCfg, err := loadRESTConfig(*kubeconfig)
	if err != nil {
		fmt.Fprintln(stderr, "image-pin-webhook doctor: kubeconfig:", err)
		return ExitFail
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	diagnose(ctx, restCfg, d)
	d.write(stdout, *output == "json")
	if !d.Called {
		return ExitFail
	}
	return ExitOK
}

func loadRESTConfig(kubeconfig string) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if kubeconfig != "" {
		rules.ExplicitPath = kubeconfig
	}
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
}

// diagnose fills d: the namespace, the dry run, and the cause when the
// webhook was not called or did not answer.
func diagnose(ctx context.Context, restCfg *rest.Config, d *Diagnosis) {
	restCfg = rest.CopyConfig(restCfg)
	warn := &warnings{}
	restCfg.WarningHandler = warn
	cs, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		d.Cause = err.Error()
		return
	}
	mwc, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, d.WebhookConfig, metav1.GetOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) {
			d.Cause = fmt.Sprintf("not called: the MutatingWebhookConfiguration %s is missing (--webhook-config-name)", d.WebhookConfig)
		} else {
			d.Cause = fmt.Sprintf("reading the MutatingWebhookConfiguration %s: %v", d.WebhookConfig, err)
		}
		return
	}
	if d.Namespace == "" {
		list, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: enabledLabel + "=true"})
		if err != nil {
			d.Cause = fmt.Sprintf("listing namespaces labelled %s=true: %v (or give --namespace)", enabledLabel, err)
			return
		}
		if len(list.Items) == 0 {
			d.Cause = fmt.Sprintf("not called: no namespace is labelled %s=true (label one, or give --namespace)", enabledLabel)
			return
		}
		d.Namespace = list.Items[0].Name
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: d.Namespace, GenerateName: doctorPodNamePrefix},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "doctor", Image: d.Image}}},
	}
	start := time.Now()
	got, err := cs.CoreV1().Pods(d.Namespace).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	d.Latency = time.Since(start)
	d.Warnings = warn.got
	if err != nil {
		if msg := err.Error(); strings.Contains(msg, "denied the request") {
			d.Called, d.Denial = true, msg
			return
		}
		d.APIError = err.Error()
		d.Cause = callFailure(err, ctx)
		return
	}
	_, annotated := got.Annotations[originalImagesKey]
	if annotated || mentionsWebhook(d.Warnings) {
		d.Called = true
		if img := got.Spec.Containers[0].Image; img != d.Image {
			d.PinnedImage = img
		}
		return
	}
	d.Cause = notCalled(ctx, cs, mwc, d.Namespace)
}

func mentionsWebhook(ws []string) bool {
	for _, w := range ws {
		if strings.Contains(w, "image-pin") || strings.Contains(w, "report mode:") || strings.HasSuffix(w, "left as it is") ||
			strings.HasSuffix(w, "pinned to the last known digest") {
			return true
		}
	}
	return false
}

// callFailure names the likely cause of a dry run the API server refused
// because its call to the webhook failed (failurePolicy Fail).
func callFailure(err error, ctx context.Context) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "x509") || strings.Contains(msg, "certificate") || strings.Contains(msg, "tls:"):
		return "TLS: the API server does not trust the webhook's certificate: the caBundle of the webhook configuration is not the CA that signed the serving certificate, or the certificate does not name the Service"
	case strings.Contains(msg, "connection refused") || strings.Contains(msg, "no endpoints") || strings.Contains(msg, "no such host") || strings.Contains(msg, "service \""):
		return "unreachable: the API server cannot connect to the webhook (no ready endpoints, wrong Service or port)"
	case strings.Contains(msg, "deadline exceeded") || strings.Contains(msg, "Client.Timeout") || strings.Contains(msg, "i/o timeout") || errors.Is(ctx.Err(), context.DeadlineExceeded):
		return "timeout: the API server got no answer in timeoutSeconds: likely a NetworkPolicy keeping the API server from the admission port, or a CA mismatch the connection stalls on"
	case strings.Contains(msg, "failed calling webhook"):
		return "the API server's call to the webhook failed"
	}
	return "the dry run was refused"
}

// notCalled explains a dry run that came back untouched: either the
// webhook was not selected, or failurePolicy Ignore hid a failed call.
func notCalled(ctx context.Context, cs kubernetes.Interface, mwc *admissionregistrationv1.MutatingWebhookConfiguration, ns string) string {
	nsObj, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err == nil {
		for _, w := range mwc.Webhooks {
			if w.NamespaceSelector == nil {
				continue
			}
			sel, err := metav1.LabelSelectorAsSelector(w.NamespaceSelector)
			if err == nil && !sel.Matches(labels.Set(nsObj.Labels)) {
				return fmt.Sprintf("not called: namespace %s does not match the namespaceSelector of webhook %s (%s); label it %s=true", ns, w.Name, sel, enabledLabel)
			}
		}
	}
	for _, w := range mwc.Webhooks {
		if len(w.ClientConfig.CABundle) == 0 {
			return fmt.Sprintf("not called or failed: webhook %s has an empty caBundle (nothing injected it: cert-manager's CA injector or --cert-secret)", w.Name)
		}
		if w.FailurePolicy != nil && *w.FailurePolicy == admissionregistrationv1.Ignore {
			return fmt.Sprintf("not called or failed: webhook %s has failurePolicy Ignore, which hides a failed call (timeout: NetworkPolicy or CA; TLS: caBundle), or IMAGE is covered by no registry entry; the webhook's log and image_pin_admissions_total say whether it was reached", w.Name)
		}
	}
	return "not called, or IMAGE is covered by no registry entry of the config (the webhook leaves such images silently): give an IMAGE the config covers; else the webhook configuration does not select this Pod (rules, objectSelector or matchConditions)"
}
