package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/image-pin/image-pin-webhook/api/v1alpha1"
	"github.com/image-pin/image-pin-webhook/config"
)

const driftUsage = `Usage: image-pin-webhook drift [-A | -n NS] [--all] [--exit-code] [-o text|wide|json]
         [--config FILE] [--state-namespace NS] [--kubeconfig FILE] [--timeout 2m]

Lists the containers of Deployments, StatefulSets, DaemonSets, CronJobs
and Pods without a controller, in namespaces labelled
image-pin.io/enabled=true, whose pinned digest is no longer their record's:
the image as written, the tag and digest pinned, the record's current tag
and digest, and since when. It reads the ImageResolution records in
--state-namespace and writes nothing. With --config (the webhook's config
file) the record is the one the webhook would use for the container's
namespace, entry by entry; without it, drift assumes that a record serves a
namespace that created it or whose pinned digest it gave. Without -A or -n,
the namespace of the kubeconfig's context.

Exit 0 when it could read everything (drift or not), 1 when it could not,
2 on bad flags; with --exit-code, 3 when a container drifted.
`

// ExitDrift is drift's exit code with --exit-code when a container drifted:
// apart from 1, so a script tells "roll forward" from "could not tell".
const ExitDrift = 3

// enabledLabel is the opt-in label of the contract.
const enabledLabel = "image-pin.io/enabled"

// defaultDriftTimeout bounds a whole run: a cluster-wide read of five
// kinds, a page at a time.
const defaultDriftTimeout = 2 * time.Minute

// driftPageSize is how many objects a list returns at a time, so a large
// cluster is read in bounded memory (kubectl's default chunk size).
const driftPageSize = 500

type driftFlags struct {
	allNamespaces, all, exitCode bool
	namespace, config, stateNS   string
	kubeconfig, output           string
	timeout                      time.Duration
}

// defaultStateNS is --state-namespace's default, as the server's: the pod's
// namespace, else image-pin-system.
func defaultStateNS() string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	return "image-pin-system"
}

func runDrift(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("drift", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, driftUsage, "\nFlags:\n"); fs.PrintDefaults() }
	var f driftFlags
	fs.BoolVar(&f.allNamespaces, "A", false, "every opted-in namespace")
	fs.BoolVar(&f.allNamespaces, "all-namespaces", false, "every opted-in namespace")
	fs.StringVar(&f.namespace, "n", "", "short for --namespace")
	fs.StringVar(&f.namespace, "namespace", "", "one namespace (default: the kubeconfig context's)")
	fs.BoolVar(&f.all, "all", false, "list every container read (current, no-record, ambiguous, unpinned), not only the drifted ones")
	fs.BoolVar(&f.exitCode, "exit-code", false, fmt.Sprintf("exit %d when a container drifted, as git diff --exit-code", ExitDrift))
	fs.StringVar(&f.config, "config", "", "the webhook's config file: records are matched entry by entry, as admissions in each namespace use them")
	fs.StringVar(&f.stateNS, "state-namespace", defaultStateNS(), "the namespace holding the records (the server's --state-namespace)")
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig (default: KUBECONFIG, ~/.kube/config or in-cluster)")
	fs.StringVar(&f.output, "o", "text", "output: text, wide or json")
	fs.DurationVar(&f.timeout, "timeout", defaultDriftTimeout, "how long drift may take")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitUsage
	}
	switch {
	case len(pos) > 0:
		err = fmt.Errorf("unexpected argument %q: drift takes flags only", pos[0])
	case f.allNamespaces && f.namespace != "":
		err = errors.New("-A and --namespace: give one")
	case !slices.Contains([]string{"text", "wide", "json"}, strings.ToLower(f.output)):
		err = fmt.Errorf("-o %q: want text, wide or json", f.output)
	case f.timeout <= 0:
		err = fmt.Errorf("--timeout %s: want a positive duration", f.timeout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "image-pin-webhook drift: %v\n\n%s", err, driftUsage)
		return ExitUsage
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	rep, notes, err := drift(ctx, f)
	if err != nil {
		fmt.Fprintln(stderr, "image-pin-webhook drift:", err)
		return ExitFail
	}
	switch strings.ToLower(f.output) {
	case "json":
		if err := rep.writeJSON(stdout); err != nil {
			fmt.Fprintln(stderr, "image-pin-webhook drift:", err)
			return ExitFail
		}
	default:
		rep.writeText(stdout, strings.EqualFold(f.output, "wide"), f.all, time.Now())
	}
	for _, n := range notes { // on stderr, so that stdout stays the table or the JSON
		fmt.Fprintln(stderr, n)
	}
	if f.exitCode && rep.Summary.Drifted > 0 {
		return ExitDrift
	}
	return ExitOK
}

// drift reads the cluster and judges every container; notes are what it
// adds on stderr.
func drift(ctx context.Context, f driftFlags) (*driftReport, []string, error) {
	rep := &driftReport{Kind: driftReportKind, Version: driftReportVersion, StateNamespace: f.stateNS, Config: f.config}
	var cfg *config.Config
	if f.config != "" {
		var err error
		if cfg, err = config.Load(f.config); err != nil {
			return nil, nil, err
		}
	}
	c, ns, err := driftClient(f)
	if err != nil {
		return nil, nil, err
	}
	if !f.allNamespaces && f.namespace == "" {
		f.namespace = ns
	}
	var notes []string
	rep.Namespaces, notes, err = optedIn(ctx, c, f)
	if err != nil {
		return nil, nil, err
	}
	if len(rep.Namespaces) == 0 {
		return rep, notes, nil
	}
	var recs v1alpha1.ImageResolutionList
	err = listAll(ctx, c, &recs, nil, client.InNamespace(f.stateNS))
	switch {
	case meta.IsNoMatchError(err) || apierrors.IsNotFound(err):
		return nil, nil, fmt.Errorf("the ImageResolution CRD is not installed (charts/image-pin-webhook/crds): records exist with the webhook's --state cluster only")
	case err != nil:
		return nil, nil, fmt.Errorf("listing the records (imageresolutions.image-pin.io) in %s: %w", f.stateNS, err)
	}
	m := newMatcher(cfg, f.stateNS, recs.Items)
	for _, kind := range driftKinds {
		cs, err := listContainers(ctx, c, kind, rep.Namespaces, f.allNamespaces)
		if err != nil {
			return nil, nil, err
		}
		rep.add(m, cs, f.all)
	}
	rep.sort()
	s := rep.Summary
	if s.Drifted == 0 {
		notes = append(notes, fmt.Sprintf("No drift in %s (%s on their record's digest).", namespacesText(rep.Namespaces), containers(s.Current, "pinned container")))
	}
	if !f.all && s.NoRecord+s.Ambiguous > 0 {
		notes = append(notes, fmt.Sprintf("%s without a record drift can tell (%d no-record, %d ambiguous): --all lists them, -o json says why.",
			containers(s.NoRecord+s.Ambiguous, "pinned container"), s.NoRecord, s.Ambiguous))
	}
	return rep, notes, nil
}

// containers is n things, in the plural unless one.
func containers(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

func namespacesText(ns []string) string {
	if len(ns) == 1 {
		return "namespace " + ns[0]
	}
	return fmt.Sprintf("%d opted-in namespaces", len(ns))
}

// driftClient is a reading client through the kubeconfig, and the
// namespace of its context.
func driftClient(f driftFlags) (client.Client, string, error) {
	// controller-runtime complains on stderr when its logger is never set;
	// this process has nothing of it to log.
	ctrllog.SetLogger(logr.Discard())
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = f.kubeconfig
	kc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{})
	restCfg, err := kc.ClientConfig()
	if err != nil {
		return nil, "", fmt.Errorf("kubeconfig: %w", err)
	}
	ns, _, err := kc.Namespace()
	if err != nil {
		return nil, "", fmt.Errorf("kubeconfig: %w", err)
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, "", err
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return nil, "", err
	}
	c, err := client.New(restCfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, "", fmt.Errorf("kubeconfig: %w", err)
	}
	return c, ns, nil
}

// optedIn lists the namespaces to read: every one labelled
// image-pin.io/enabled=true with -A, else f.namespace when it is (a note
// says so when not). kube-system and the state namespace (the webhook's
// own, by default) are never mutated, so never read.
func optedIn(ctx context.Context, c client.Client, f driftFlags) ([]string, []string, error) {
	never := func(ns string) bool { return ns == "kube-system" || ns == f.stateNS }
	if !f.allNamespaces {
		var n corev1.Namespace
		if err := c.Get(ctx, client.ObjectKey{Name: f.namespace}, &n); err != nil {
			return nil, nil, fmt.Errorf("namespace %s: %w", f.namespace, err)
		}
		switch {
		case never(f.namespace):
			return nil, []string{fmt.Sprintf("Namespace %s is never mutated (kube-system, or the webhook's own, --state-namespace): drift reads nothing there.", f.namespace)}, nil
		case n.Labels[enabledLabel] != "true":
			return nil, []string{fmt.Sprintf("Namespace %s is not opted in (label %s=true): the webhook pins nothing there.", f.namespace, enabledLabel)}, nil
		}
		return []string{f.namespace}, nil, nil
	}
	var list corev1.NamespaceList
	if err := listAll(ctx, c, &list, nil, client.MatchingLabels{enabledLabel: "true"}); err != nil {
		return nil, nil, fmt.Errorf("listing the namespaces labelled %s=true: %w", enabledLabel, err)
	}
	var out []string
	for _, n := range list.Items {
		if !never(n.Name) {
			out = append(out, n.Name)
		}
	}
	slices.Sort(out)
	if len(out) == 0 {
		return nil, []string{fmt.Sprintf("No namespace is opted in (label %s=true).", enabledLabel)}, nil
	}
	return out, nil, nil
}

// newList is an empty API list of kind.
func newList(kind string) client.ObjectList {
	switch kind {
	case kindDeployment:
		return &appsv1.DeploymentList{}
	case kindStatefulSet:
		return &appsv1.StatefulSetList{}
	case kindDaemonSet:
		return &appsv1.DaemonSetList{}
	case kindCronJob:
		return &batchv1.CronJobList{}
	}
	return &corev1.PodList{}
}

// listContainers reads the workloads of kind in namespaces, a page at a
// time: with -A in one cluster-wide list (filtered to namespaces), else
// namespace by namespace.
func listContainers(ctx context.Context, c client.Client, kind string, namespaces []string, clusterWide bool) ([]driftContainer, error) {
	var out []driftContainer
	read := func(opts ...client.ListOption) error {
		list := newList(kind)
		return listAll(ctx, c, list, func() {
			for _, dc := range containersOf(list) {
				if _, ok := slices.BinarySearch(namespaces, dc.Namespace); ok {
					out = append(out, dc)
				}
			}
		}, opts...)
	}
	if clusterWide {
		if err := read(); err != nil {
			return nil, fmt.Errorf("listing %ss in every namespace: %w", kind, err)
		}
		return out, nil
	}
	for _, ns := range namespaces {
		if err := read(client.InNamespace(ns)); err != nil {
			return nil, fmt.Errorf("listing %ss in %s: %w", kind, ns, err)
		}
	}
	return out, nil
}

// listAll lists in pages of driftPageSize, calling page after each when
// given (the list then holds that page only); without page the pages
// accumulate in list.
func listAll(ctx context.Context, c client.Client, list client.ObjectList, page func(), opts ...client.ListOption) error {
	var items []runtime.Object
	cont := ""
	for {
		o := append(slices.Clone(opts), client.Limit(driftPageSize))
		if cont != "" {
			o = append(o, client.Continue(cont))
		}
		if err := c.List(ctx, list, o...); err != nil {
			return err
		}
		if page != nil {
			page()
		} else {
			got, err := meta.ExtractList(list)
			if err != nil {
				return err
			}
			items = append(items, got...)
		}
		if cont = list.GetContinue(); cont == "" {
			break
		}
	}
	if page == nil {
		return meta.SetList(list, items)
	}
	return nil
}
