package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"sync"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/image-pin/image-pin-webhook/config"
	"github.com/image-pin/image-pin-webhook/registries"
	"github.com/image-pin/image-pin-webhook/registries/credentials"
	"github.com/image-pin/image-pin-webhook/registries/imageref"
	"github.com/image-pin/image-pin-webhook/resolver"
	pinhook "github.com/image-pin/image-pin-webhook/webhook"
)

const resolveUsage = `Usage: image-pin-webhook resolve [--config FILE] [--namespace NS] [--strategy S]
         [--constraint C] [--allow-tags A] [--ignore-tags G,…] [--service-account SA]
         [--image-pull-secrets S,…] [--pull-secrets-from MANIFEST] [--kubeconfig FILE]
         [-o text|json] IMAGE…

Resolves each IMAGE as an admission of a Pod in namespace NS would: the
entry matched (honouring its namespaces:), the policy rules, and the flags
as the image-pin.io/ annotations of the same names. Secrets named by the
config's credentials are read through the kubeconfig, only when needed.
For entries whose credentials are imagepullsecrets, the Pod names the
--image-pull-secrets given, and runs as --service-account (default:
default), whose pull secrets are read when it names none, as in the cluster;
--pull-secrets-from takes both (and the namespace, unless --namespace is
given) from a workload manifest, as kubectl apply would send it.
Prints the entry, the credential kind and identity (never its value), the
tags considered, the choice and the pinned reference, or the error; when an
ext: script failed, its exit status and last stderr line (redacted), as the
webhook logs them and tenants never see.
Exit 0 when every image resolved or was left alone, 1 when one failed.
`

// resolveReport is what resolve prints with -o json.
type resolveReport struct {
	Config    string        `json:"config"`
	Namespace string        `json:"namespace"`
	Mode      string        `json:"mode"`
	Images    []imageReport `json:"images"`
}

type imageReport struct {
	Image      string     `json:"image"`
	Entry      *entryView `json:"entry,omitempty"`
	Policy     *ruleView  `json:"policy,omitempty"`
	Listed     *int       `json:"listed,omitempty"`
	Candidates []string   `json:"candidates,omitempty"`
	Tag        string     `json:"tag,omitempty"`
	Pinned     string     `json:"pinned,omitempty"`
	LeftAlone  string     `json:"left_alone,omitempty"`
	Warnings   []string   `json:"warnings,omitempty"`
	Error      string     `json:"error,omitempty"`
	// ScriptFailure is how the entry's ext: script failed: its exit status
	// and last stderr line (redacted), which the webhook logs for the
	// operator and never puts in a warning or denial.
	ScriptFailure string `json:"script_failure,omitempty"`

	// source is the entry's credentials as config parsed them, once.
	source *credentials.Source
}

type resolveFlags struct {
	config, namespace, kubeconfig, output string
	steering                              map[string]*string // by annotation name (pinhook.SteeringAnnotations)
	serviceAccount, pullSecrets           string             // for imagepullsecrets entries
}

// workload is what the resolved Pod presents to imagepullsecrets entries.
func (f resolveFlags) workload() credentials.Workload {
	w := credentials.Workload{Namespace: f.namespace, ServiceAccount: f.serviceAccount}
	for _, n := range strings.Split(f.pullSecrets, ",") {
		if n = strings.TrimSpace(n); n != "" {
			w.PullSecrets = append(w.PullSecrets, n)
		}
	}
	return w
}

// fromManifest fills in what the flags left unset from a workload manifest.
func (f *resolveFlags) fromManifest(fs *flag.FlagSet, path string) error {
	ns, sa, secrets, err := manifestWorkload(path)
	if err != nil {
		return fmt.Errorf("--pull-secrets-from: %w", err)
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	if ns != "" && !set["namespace"] && !set["n"] {
		f.namespace = ns
	}
	if !set["service-account"] {
		f.serviceAccount = sa
	}
	if !set["image-pull-secrets"] {
		f.pullSecrets = strings.Join(secrets, ",")
	}
	return nil
}

// annotations are the flags as the annotations an app team would set.
func (f resolveFlags) annotations() map[string]string {
	ann := map[string]string{}
	for _, a := range pinhook.SteeringAnnotations() {
		if v := f.steering[a.Name]; v != nil && *v != "" {
			ann[a.Key("")] = *v
		}
	}
	return ann
}

func runResolve(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var f resolveFlags
	fs := flag.NewFlagSet("resolve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, resolveUsage); fs.PrintDefaults() }
	fs.StringVar(&f.config, "config", DefaultConfig, "the config file")
	fs.StringVar(&f.namespace, "namespace", "default", "the namespace of the admission")
	fs.StringVar(&f.namespace, "n", "default", "short for --namespace")
	// One flag per steering annotation, of the same name.
	f.steering = map[string]*string{}
	for _, a := range pinhook.SteeringAnnotations() {
		f.steering[a.Name] = fs.String(a.Name, "", "as the annotation "+a.Key("")+": "+a.Usage)
	}
	fs.StringVar(&f.serviceAccount, "service-account", "", "the Pod's serviceAccountName, for imagepullsecrets entries (default: default)")
	fs.StringVar(&f.pullSecrets, "image-pull-secrets", "", "the Pod's spec.imagePullSecrets, comma-separated, for imagepullsecrets entries")
	manifest := fs.String("pull-secrets-from", "", "a workload manifest (Pod, Deployment…; YAML or JSON) whose imagePullSecrets, serviceAccountName and namespace the Pod takes; flags given win")
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig to read Secrets with (default: $KUBECONFIG, in-cluster, ~/.kube/config)")
	fs.StringVar(&f.output, "o", "text", "output format: text or json")
	images, err := parseInterspersed(fs, args)
	if err != nil {
		return ExitUsage
	}
	asJSON, err := outputFormat(f.output)
	if err == nil && len(images) == 0 {
		err = fmt.Errorf("name at least one image")
	}
	if err == nil && *manifest != "" {
		err = f.fromManifest(fs, *manifest)
	}
	if err != nil {
		fmt.Fprintln(stderr, "image-pin-webhook resolve:", err)
		return ExitUsage
	}
	creds := credentials.New(credentials.WithSecretReader(newLazyReader(f.kubeconfig)))
	cfg, err := config.Load(f.config, registries.WithCredentials(creds))
	if err != nil {
		fmt.Fprintln(stderr, "image-pin-webhook resolve:", err)
		return ExitFail
	}
	rep := resolveReport{Config: f.config, Namespace: f.namespace, Mode: string(cfg.Policy.Mode)}
	// Report mode only warns; resolve shows the pin it would have made.
	pinning := *cfg
	pinning.Policy.Mode = config.ModePin
	code := ExitOK
	for _, image := range images {
		r := resolveOne(ctx, &pinning, f, image)
		r.ScriptFailure = scriptFailure(creds, r)
		if r.Error != "" {
			code = ExitFail
		}
		rep.Images = append(rep.Images, r)
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		printResolve(stdout, rep)
	}
	return code
}

// resolveOne runs the webhook's own handler on a Pod holding image in the
// namespace, with a resolver of its own so the trace sees every lookup.
func resolveOne(ctx context.Context, cfg *config.Config, f resolveFlags, image string) imageReport {
	r := imageReport{Image: image}
	img, err := imageref.ParseImage(image)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	target, matched := cfg.Registries.Match(img, f.namespace)
	if matched {
		ev := viewEntry(target.Entry, cfg.RegistryPolicy(target.Entry))
		r.Entry, r.source = &ev, target.Entry.Credentials
	}
	// The lookup may outlive Handle by a moment when the deadline cuts it
	// short, hence the lock.
	var mu sync.Mutex
	var seen *resolver.LookupTrace
	trace := &resolver.Trace{Lookup: func(lt resolver.LookupTrace) {
		mu.Lock()
		seen = &lt
		mu.Unlock()
	}}
	h := pinhook.NewHandler(func() *config.Config { return cfg }, resolver.New())
	rv := h.Decide(resolver.WithTrace(ctx, trace), podAdmission(f.namespace, image, f.annotations(), f.workload()))
	mu.Lock()
	if lt := seen; lt != nil {
		r.Policy = &ruleView{Strategy: lt.Strategy, Constraint: lt.Constraint, AllowTags: lt.AllowTags, IgnoreTags: lt.IgnoreTags}
		if lt.Strategy != string(resolver.Digest) {
			r.Listed, r.Candidates = &lt.Listed, lt.Candidates
		}
		r.Tag = lt.Tag
	}
	mu.Unlock()
	r.Warnings = append(r.Warnings, rv.Warnings...)
	switch {
	case rv.Refused != nil:
		r.Error = rv.Refused.Error()
	case len(rv.Decisions) != 1:
		r.LeftAlone = cmpOr(rv.Reason, "the admission decided no container")
	default:
		r.decided(rv.Decisions[0], func() string { return unmatched(cfg, img, f.namespace) })
	}
	if r.Entry != nil && r.Entry.Credentials != nil {
		// After the lookup, so the credentials come from its cache.
		if err := identify(ctx, target, f.workload(), r.Entry.Credentials); err != nil && r.Error == "" {
			r.Error = err.Error()
		}
	}
	return r
}

// decided fills in what the handler decided for the Pod's one container.
func (r *imageReport) decided(d pinhook.Decision, unmatched func() string) {
	switch d.Outcome {
	case pinhook.Pinned:
		r.Pinned = d.Pin
	case pinhook.Kept:
		r.LeftAlone = d.Reason
	case pinhook.Skipped:
		if d.Entry == "" {
			r.LeftAlone = unmatched()
		} else {
			r.LeftAlone = d.Reason + ": an admission changes nothing"
		}
	case pinhook.Failed:
		switch {
		case d.OnError == config.OnErrorFail:
			r.Error = d.Err.Error() // an admission is denied with it
			return
		case d.Pin == "":
			r.Error = d.Err.Error() + "; left as it is"
			return
		}
		// on_error: ignore with a last known digest: pinned to it, with a
		// warning saying why.
		r.Pinned = d.Pin
		r.Warnings = append(r.Warnings, d.Err.Error()+"; pinned to the last known digest")
	}
	if r.Pinned != "" && r.Tag == "" {
		if img, err := imageref.ParseImage(r.Pinned); err == nil {
			r.Tag = img.Tag
		}
	}
}

func cmpOr(s, otherwise string) string {
	if s != "" {
		return s
	}
	return otherwise
}

// identify fills in whom the target's credentials log in as and, for
// imagepullsecrets, which Secrets (names and resourceVersions) gave them
// and the credential ID answers are kept under: never a value.
func identify(ctx context.Context, target registries.Target, w credentials.Workload, cv *credView) error {
	if target.UsesPullSecrets() {
		pull, err := target.ReadPullSecrets(ctx, w)
		if err != nil {
			return err
		}
		target = target.WithPullSecrets(pull)
		cv.PullSecrets, cv.CredentialID = pull.String(), pull.ID()
	}
	id, err := target.LoginName(ctx)
	if err != nil {
		return err
	}
	cv.Identity = id
	return nil
}

// scriptFailure is how the ext: script of the image's entry failed, when
// the image did not resolve and the script's last run failed.
func scriptFailure(creds *credentials.Cache, r imageReport) string {
	if r.Error == "" || r.source == nil || r.source.Kind != credentials.KindExt {
		return ""
	}
	if f, ok := creds.LastScriptFailure(*r.source); ok {
		return f.String()
	}
	return ""
}

// unmatched says why no entry serves img in ns.
func unmatched(cfg *config.Config, img imageref.Image, ns string) string {
	for _, e := range cfg.Registries.Entries() {
		if _, ok := img.PrefixMatch(e.Prefix); ok {
			return fmt.Sprintf("entry %q has its prefix but admits only the namespaces %s, not %s: an admission leaves it as it is",
				e.Name, strings.Join(e.Namespaces, ", "), ns)
		}
	}
	return fmt.Sprintf("no entry of the config matches it (as %s): an admission leaves it as it is", img.Canonical())
}

// podContainer names the one container of the Pod resolve admits.
const podContainer = "resolve"

// podAdmission is the CREATE of a one-container Pod, as the API server
// would send it; a dry run, as kubectl --dry-run=server would be.
func podAdmission(ns, image string, ann map[string]string, w credentials.Workload) admission.Request {
	pod := corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: "image-pin-resolve", Namespace: ns, Annotations: ann},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: podContainer, Image: image}},
			ServiceAccountName: w.ServiceAccount},
	}
	for _, n := range w.PullSecrets {
		pod.Spec.ImagePullSecrets = append(pod.Spec.ImagePullSecrets, corev1.LocalObjectReference{Name: n})
	}
	raw, _ := json.Marshal(pod)
	dry := true
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID:       "image-pin-resolve",
		Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
		Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
		Namespace: ns, Name: pod.Name, Operation: admissionv1.Create,
		Object: runtime.RawExtension{Raw: raw}, DryRun: &dry,
	}}
}

// maxShown bounds the candidates listed in text output; -o json lists all.
const maxShown = 10

func printResolve(w io.Writer, rep resolveReport) {
	fmt.Fprintf(w, "namespace %s, config %s", rep.Namespace, rep.Config)
	if rep.Mode == string(config.ModeReport) {
		fmt.Fprint(w, " (mode: report: the webhook would only warn what it shows here)")
	}
	fmt.Fprintln(w)
	for _, r := range rep.Images {
		fmt.Fprintf(w, "\n%s\n", r.Image)
		if e := r.Entry; e != nil {
			fmt.Fprintf(w, "  entry:       %s (prefix %s, api_url %s)\n", e.Name, e.Prefix, e.APIURL)
			if c := e.Credentials; c != nil {
				id := "as " + c.Identity
				if c.Identity == "" {
					id = "which could not be read"
				}
				fmt.Fprintf(w, "  credentials: %s (%s), %s\n", c.Kind, c.Source, id)
				if c.PullSecrets != "" {
					fmt.Fprintf(w, "  secrets:     %s; credential ID %s\n", c.PullSecrets, c.CredentialID)
				}
			} else {
				fmt.Fprintln(w, "  credentials: none (anonymous)")
			}
		}
		if p := r.Policy; p != nil {
			fmt.Fprintf(w, "  policy:      %s\n", describeFields(*p))
		}
		if r.Listed != nil {
			fmt.Fprintf(w, "  candidates:  %d of %d listed tags pass allow_tags and ignore_tags", len(r.Candidates), *r.Listed)
			shown := r.Candidates
			if len(shown) > maxShown {
				shown = shown[len(shown)-maxShown:]
				fmt.Fprintf(w, "; the last %d listed: ", maxShown)
			} else if len(shown) > 0 {
				fmt.Fprint(w, ": ")
			}
			fmt.Fprintln(w, strings.Join(shown, ", "))
		}
		if r.Tag != "" && (r.Error == "" || r.Policy == nil || r.Policy.Strategy != string(resolver.Digest)) {
			fmt.Fprintf(w, "  chose:       %s\n", r.Tag)
		}
		switch {
		case r.Pinned != "":
			fmt.Fprintf(w, "  pinned:      %s\n", r.Pinned)
		case r.LeftAlone != "":
			fmt.Fprintf(w, "  left alone:  %s\n", r.LeftAlone)
		}
		if r.Error != "" {
			fmt.Fprintf(w, "  error:       %s\n", r.Error)
		}
		if r.ScriptFailure != "" {
			fmt.Fprintf(w, "  script:      %s\n", r.ScriptFailure)
		}
		for _, warn := range r.Warnings {
			fmt.Fprintf(w, "  warning:     %s\n", warn)
		}
	}
}
