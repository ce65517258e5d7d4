package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	pinhook "github.com/image-pin/image-pin-webhook/webhook"
)

const doctorUsage = `Usage: image-pin-webhook doctor [--namespace NS] [--webhook-config-name NAME]
         [--timeout 15s] [--kubeconfig FILE] [-o text|json] [IMAGE]

Creates a server-side dry-run Pod (nothing is stored) running IMAGE
(default ` + doctorImage + `, which a config rarely matches: left alone) in
NS, else in the first namespace the webhook's namespaceSelector selects,
and reports whether the API server called the webhook, how long the
admission took, what the webhook answered (pinned image, warnings), and
when it was not called, the likely cause: not selected, timeout
(NetworkPolicy), TLS (caBundle) or unreachable. Exit 0 when the webhook
answered, 1 when not.
`

// doctorImage is the default probe image.
const doctorImage = "registry.k8s.io/pause:3.10"

// probeAnnotation is an image-pin.io/ key no webhook knows: every
// image-pin webhook answers it with a warning naming it, so a call shows
// in report mode and for an image left alone too.
const probeAnnotation = pinhook.ProbeAnnotation

// Causes when the webhook was not called or did not answer.
const (
	causeNotCalled   = "not_called"
	causeTimeout     = "timeout"
	causeTLS         = "tls"
	causeUnreachable = "unreachable"
	causeError       = "error"
)

// doctorReport is every decision doctor made; text and JSON render it.
type doctorReport struct {
	WebhookConfiguration string   `json:"webhookConfiguration"`
	Webhook              string   `json:"webhook,omitempty"`
	FailurePolicy        string   `json:"failurePolicy,omitempty"`
	TimeoutSeconds       int32    `json:"timeoutSeconds,omitempty"`
	Namespace            string   `json:"namespace,omitempty"`
	Image                string   `json:"image"`
	Called               bool     `json:"called"`
	Latency              string   `json:"latency,omitempty"`
	Pinned               string   `json:"pinned,omitempty"`
	LeftAlone            bool     `json:"leftAlone,omitempty"`
	Denied               string   `json:"denied,omitempty"`
	Warnings             []string `json:"warnings,omitempty"`
	Cause                string   `json:"cause,omitempty"`
	Detail               string   `json:"detail,omitempty"`
}

type doctorFlags struct {
	namespace, config, kubeconfig, output string
	timeout                               time.Duration
}

func runDoctor(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, doctorUsage) }
	var f doctorFlags
	fs.StringVar(&f.namespace, "namespace", "", "the namespace of the dry-run Pod (default: the first one the webhook selects)")
	fs.StringVar(&f.config, "webhook-config-name", "image-pin-webhook", "the MutatingWebhookConfiguration")
	fs.DurationVar(&f.timeout, "timeout", 15*time.Second, "how long doctor may take")
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig (default: KUBECONFIG, ~/.kube/config or in-cluster)")
	fs.StringVar(&f.output, "o", "text", "output: text or json")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitUsage
	}
	asJSON, err := outputFormat(f.output)
	if err != nil || len(pos) > 1 {
		fmt.Fprintf(stderr, "image-pin-webhook doctor: %v\n\n%s", cmpErr(err, "at most one IMAGE"), doctorUsage)
		return ExitUsage
	}
	image := doctorImage
	if len(pos) == 1 {
		image = pos[0]
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	rep := diagnose(ctx, f, image)
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		rep.writeText(stdout)
	}
	if rep.Called {
		return ExitOK
	}
	return ExitFail
}

func cmpErr(err error, msg string) string {
	if err != nil {
		return err.Error()
	}
	return msg
}

// warningSink collects the API server's warnings.
type warningSink struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warningSink) HandleWarningHeader(_ int, _ string, msg string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, msg)
}

func diagnose(ctx context.Context, f doctorFlags, image string) *doctorReport {
	rep := &doctorReport{WebhookConfiguration: f.config, Image: image}
	ctrllog.SetLogger(logr.Discard())
	restCfg, err := ctrl.GetConfig()
	if f.kubeconfig != "" {
		restCfg, err = clientcmd.BuildConfigFromFlags("", f.kubeconfig)
	}
	if err != nil {
		rep.Cause, rep.Detail = causeError, "kubeconfig: "+err.Error()
		return rep
	}
	sink := &warningSink{}
	restCfg.WarningHandler = sink
	cs, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		rep.Cause, rep.Detail = causeError, err.Error()
		return rep
	}
	mwc, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, f.config, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		rep.Cause, rep.Detail = causeNotCalled, fmt.Sprintf("the MutatingWebhookConfiguration %s does not exist: is the chart installed (--webhook-config-name)?", f.config)
		return rep
	}
	if err != nil || len(mwc.Webhooks) == 0 {
		rep.Cause, rep.Detail = causeError, fmt.Sprintf("reading MutatingWebhookConfiguration %s: %v", f.config, cmpErr(err, "it has no webhooks"))
		return rep
	}
	wh := mwc.Webhooks[0]
	rep.Webhook = wh.Name
	if wh.FailurePolicy != nil {
		rep.FailurePolicy = string(*wh.FailurePolicy)
	}
	if wh.TimeoutSeconds != nil {
		rep.TimeoutSeconds = *wh.TimeoutSeconds
	}
	if rep.Namespace, rep.Detail = pickNamespace(ctx, cs, wh, f.namespace); rep.Namespace == "" {
		rep.Cause = causeNotCalled
		return rep
	}
	pod := probePod(rep.Namespace, image)
	start := time.Now()
	got, err := cs.CoreV1().Pods(rep.Namespace).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	rep.Latency = time.Since(start).Round(time.Millisecond).String()
	sink.mu.Lock()
	warnings := slices.Clone(sink.msgs)
	sink.mu.Unlock()
	rep.decide(got, err, warnings, time.Since(start), wh)
	return rep
}

// pickNamespace returns ns when given, else the first namespace the
// webhook's namespaceSelector selects; "" and why when there is none.
func pickNamespace(ctx context.Context, cs kubernetes.Interface, wh admissionregistrationv1.MutatingWebhook, ns string) (string, string) {
	sel := labels.Everything()
	if wh.NamespaceSelector != nil {
		s, err := metav1.LabelSelectorAsSelector(wh.NamespaceSelector)
		if err != nil {
			return "", "the webhook's namespaceSelector: " + err.Error()
		}
		sel = s
	}
	own := ""
	if wh.ClientConfig.Service != nil {
		own = wh.ClientConfig.Service.Namespace
	}
	if ns != "" {
		list, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", ns).String()})
		if err != nil || len(list.Items) == 0 {
			return "", fmt.Sprintf("namespace %s: %v", ns, cmpErr(err, "not found"))
		}
		if !sel.Matches(labels.Set(list.Items[0].Labels)) {
			return "", fmt.Sprintf("namespace %s is not selected by the webhook's namespaceSelector (%s): label it with kubectl label namespace %s %s=true", ns, sel, ns, pinhook.EnabledLabel)
		}
		return ns, ""
	}
	list, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return "", "listing namespaces: " + err.Error()
	}
	var names []string
	for _, n := range list.Items {
		if n.Name != own && n.Name != "kube-system" && n.DeletionTimestamp == nil {
			names = append(names, n.Name)
		}
	}
	slices.Sort(names)
	if len(names) == 0 {
		return "", fmt.Sprintf("no namespace is selected by the webhook's namespaceSelector (%s): label one with kubectl label namespace NS %s=true, or pass --namespace", sel, pinhook.EnabledLabel)
	}
	return names[0], ""
}

// probePod passes the restricted Pod Security level and usual quotas, so
// that nothing after the webhook refuses the dry run.
func probePod(ns, image string) *corev1.Pod {
	small := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi")}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: "image-pin-doctor-", Annotations: map[string]string{probeAnnotation: "probe"}},
		Spec: corev1.PodSpec{
			RestartPolicy:   corev1.RestartPolicyNever,
			SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptrTo(true), RunAsUser: ptrTo(int64(65532)), SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
			Containers: []corev1.Container{{Name: "doctor", Image: image,
				Resources: corev1.ResourceRequirements{Requests: small, Limits: small},
				SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: ptrTo(false),
					Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}}},
		},
	}
}

func ptrTo[T any](v T) *T { return &v }

// decide reads the dry run's outcome.
func (r *doctorReport) decide(got *corev1.Pod, err error, warnings []string, took time.Duration, wh admissionregistrationv1.MutatingWebhook) {
	for _, w := range warnings {
		if strings.Contains(w, probeAnnotation) {
			r.Called = true // the echo of the probe annotation
			continue
		}
		r.Warnings = append(r.Warnings, w)
	}
	if err != nil {
		msg := err.Error()
		switch {
		case strings.Contains(msg, "denied the request") && strings.Contains(msg, wh.Name):
			r.Called, r.Denied = true, msg
		case strings.Contains(msg, "failed calling webhook"):
			r.Called = false
			r.Cause, r.Detail = classify(msg), "the API server: "+msg
		default:
			r.Cause, r.Detail = causeError, "the dry-run Pod: "+msg
		}
		return
	}
	if got != nil {
		if _, ok := got.Annotations[pinhook.OriginalImagesKey]; ok {
			r.Called = true
		}
		if len(got.Spec.Containers) > 0 && got.Spec.Containers[0].Image != r.Image {
			r.Called, r.Pinned = true, got.Spec.Containers[0].Image
		}
	}
	if r.Called {
		r.LeftAlone = r.Pinned == ""
		return
	}
	// Not called, and failurePolicy Ignore hid why: the time taken and a
	// look at the endpoint tell.
	if r.TimeoutSeconds > 0 && took >= time.Duration(r.TimeoutSeconds)*time.Second*9/10 {
		r.Cause = causeTimeout
		r.Detail = fmt.Sprintf("the API server waited the webhook's whole timeoutSeconds (%ds) and admitted the Pod without it: likely a NetworkPolicy (or firewall) between the API server and the webhook's pods", r.TimeoutSeconds)
		return
	}
	r.Cause, r.Detail = probeEndpoint(wh)
}

// classify reads the API server's error text.
func classify(msg string) string {
	switch {
	case strings.Contains(msg, "x509:") || strings.Contains(msg, "tls:") || strings.Contains(msg, "certificate"):
		return causeTLS
	case strings.Contains(msg, "connection refused") || strings.Contains(msg, "no endpoints available") || strings.Contains(msg, "no such host"):
		return causeUnreachable
	// Not a bare "timeout": the URL the API server quotes ends in
	// "?timeout=10s" whatever went wrong.
	case strings.Contains(msg, "deadline exceeded") || strings.Contains(msg, "Client.Timeout") || strings.Contains(msg, "i/o timeout"):
		return causeTimeout
	}
	return causeUnreachable
}

// probeEndpoint dials the webhook as the API server would, verifying its
// certificate with the caBundle.
func probeEndpoint(wh admissionregistrationv1.MutatingWebhook) (string, string) {
	cc := wh.ClientConfig
	var host, port string
	switch {
	case cc.URL != nil:
		u, err := url.Parse(*cc.URL)
		if err != nil {
			return causeError, "the webhook's URL: " + err.Error()
		}
		host, port = u.Hostname(), u.Port()
		if port == "" {
			port = "443"
		}
	case cc.Service != nil:
		host, port = cc.Service.Name+"."+cc.Service.Namespace+".svc", "443"
		if cc.Service.Port != nil {
			port = fmt.Sprint(*cc.Service.Port)
		}
	default:
		return causeError, "the webhook has neither a URL nor a Service"
	}
	if len(cc.CABundle) == 0 {
		return causeTLS, "the webhook's caBundle is empty: cert-manager's cainjector or --cert-secret has not written it (yet)"
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(cc.CABundle) {
		return causeTLS, "the webhook's caBundle holds no PEM certificate"
	}
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: &tls.Config{RootCAs: pool, ServerName: host, MinVersion: tls.VersionTLS12}}
	conn, err := d.Dial("tcp", net.JoinHostPort(host, port))
	if err == nil {
		_ = conn.Close()
		return causeNotCalled, fmt.Sprintf("%s:%s answers and its certificate verifies with the caBundle, yet the API server did not call it: check the webhook's rules and objectSelector, or whether it requires a client certificate the API server lacks", host, port)
	}
	var verr *tls.CertificateVerificationError
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &verr):
		return causeTLS, fmt.Sprintf("the caBundle does not verify the serving certificate of %s:%s: %v", host, port, verr.Err)
	case errors.As(err, &dnsErr):
		return causeUnreachable, fmt.Sprintf("the API server could not call the webhook (failurePolicy %s hides why); %s cannot be resolved from here: run doctor in the cluster (helm test) to check the certificate", failurePolicy(wh), host)
	}
	return causeUnreachable, fmt.Sprintf("the API server could not call the webhook: %s:%s: %v (webhook pods down, or the Service points nowhere)", host, port, err)
}

func failurePolicy(wh admissionregistrationv1.MutatingWebhook) string {
	if wh.FailurePolicy == nil {
		return "Fail"
	}
	return string(*wh.FailurePolicy)
}

// writeText renders the report for a terminal.
func (r *doctorReport) writeText(w io.Writer) {
	fmt.Fprintf(w, "webhook configuration: %s", r.WebhookConfiguration)
	if r.Webhook != "" {
		fmt.Fprintf(w, " (webhook %s, failurePolicy %s, timeoutSeconds %d)", r.Webhook, r.FailurePolicy, r.TimeoutSeconds)
	}
	fmt.Fprintln(w)
	if r.Namespace != "" {
		fmt.Fprintf(w, "dry-run Pod: namespace %s, image %s, %s\n", r.Namespace, r.Image, r.Latency)
	}
	if r.Called {
		fmt.Fprintln(w, "called: yes, the webhook answered")
		switch {
		case r.Denied != "":
			fmt.Fprintf(w, "answer: denied: %s\n", r.Denied)
		case r.Pinned != "":
			fmt.Fprintf(w, "answer: pinned to %s\n", r.Pinned)
		default:
			fmt.Fprintln(w, "answer: left alone")
		}
	} else {
		fmt.Fprintf(w, "called: no (%s)\n", r.Cause)
	}
	for _, warn := range r.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}
	if r.Detail != "" {
		fmt.Fprintf(w, "cause: %s\n", r.Detail)
	}
}
