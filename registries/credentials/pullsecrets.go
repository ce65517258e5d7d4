package credentials

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// KindImagePullSecrets is the credential kind whose credentials are not in
// the config but come with each admitted object: its own pull secrets, or
// its ServiceAccount's.
const KindImagePullSecrets = "imagepullsecrets"

// MaxPullSecrets bounds the Secrets one admission may make the webhook read:
// an object (or its ServiceAccount) naming hundreds must not cost hundreds
// of API requests per admission.
const MaxPullSecrets = 16

// Workload is what an admitted object says about the pull secrets it will
// present: its namespace, its ServiceAccount and its spec.imagePullSecrets.
type Workload struct {
	Namespace      string
	ServiceAccount string   // "" is the namespace's default
	PullSecrets    []string // spec.imagePullSecrets, in order
}

// PullSecrets are the pull secrets a workload presents, as read from the
// API server at one admission. Answers obtained with them are kept under
// their ID, so they serve only workloads presenting the same Secrets at the
// same resourceVersions.
type PullSecrets struct {
	namespace string
	from      string // "the object's imagePullSecrets" or "ServiceAccount ns/name"
	secrets   []*corev1.Secret
	id        string
}

// pullSecretsNone is the ID of a workload that presents no pull secret: its
// lookups are anonymous, and so are their answers, which any workload
// could obtain; they are shared by every namespace the entry admits.
const pullSecretsNone = "none"

// ID is the credential identity of the Secrets: a hash of the namespace and
// of each Secret's name and resourceVersion, in order; "none" when there
// are none. It never depends on a Secret's value except through its
// resourceVersion.
func (p *PullSecrets) ID() string { return p.id }

// String names the Secrets and where they came from, never their values.
func (p *PullSecrets) String() string {
	if len(p.secrets) == 0 {
		return "no pull secrets (anonymous) in namespace " + p.namespace
	}
	names := make([]string, len(p.secrets))
	for i, s := range p.secrets {
		names[i] = s.Name + " (resourceVersion " + s.ResourceVersion + ")"
	}
	return fmt.Sprintf("Secrets %s in namespace %s, from %s", strings.Join(names, ", "), p.namespace, p.from)
}

// ReadPullSecrets reads the pull secrets w presents, as Kubernetes decides
// them: the object's own spec.imagePullSecrets when it names any, else its
// ServiceAccount's (the ServiceAccount admission plugin copies them into a
// Pod only when the Pod names none, and the kubelet presents only the
// Pod's). It reads within ctx (the admission's deadline) and at most
// MaxPullSecrets Secrets.
//
// A missing ServiceAccount or Secret, or a Secret that is not a readable
// docker config, is an error that names it, never a value: the container
// fails as on_error says, rather than being looked up with fewer
// credentials than its Pod will present.
func (c *Cache) ReadPullSecrets(ctx context.Context, w Workload) (*PullSecrets, error) {
	if c.secrets == nil {
		return nil, fmt.Errorf("%s: no Kubernetes client to read Secrets and ServiceAccounts with", KindImagePullSecrets)
	}
	p := &PullSecrets{namespace: w.Namespace, from: "the object's imagePullSecrets"}
	names := w.PullSecrets
	if len(names) == 0 {
		sa := cmp.Or(w.ServiceAccount, "default")
		p.from = "ServiceAccount " + w.Namespace + "/" + sa
		var acct corev1.ServiceAccount
		if err := c.secrets.Get(ctx, types.NamespacedName{Namespace: w.Namespace, Name: sa}, &acct); err != nil {
			return nil, fmt.Errorf("%s: reading ServiceAccount %s/%s: %w", KindImagePullSecrets, w.Namespace, sa, err)
		}
		for _, r := range acct.ImagePullSecrets {
			names = append(names, r.Name)
		}
	}
	names = uniqueNames(names)
	if len(names) > MaxPullSecrets {
		return nil, fmt.Errorf("%s: %s names %d pull secrets, more than %d", KindImagePullSecrets, p.from, len(names), MaxPullSecrets)
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00", w.Namespace)
	for _, n := range names {
		var s corev1.Secret
		if err := c.secrets.Get(ctx, types.NamespacedName{Namespace: w.Namespace, Name: n}, &s); err != nil {
			return nil, fmt.Errorf("%s: reading Secret %s/%s (named by %s): %w", KindImagePullSecrets, w.Namespace, n, p.from, err)
		}
		// Checked now, so a broken Secret fails every container of its
		// entry, not only those whose registry it has an entry for.
		if _, err := secretAuths(&s, "", pullSecretSource(&s)); err != nil {
			return nil, err
		}
		p.secrets = append(p.secrets, &s)
		fmt.Fprintf(h, "%s\x00%s\x00", s.Name, s.ResourceVersion)
	}
	if len(p.secrets) == 0 {
		p.id = pullSecretsNone
		return p, nil
	}
	p.id = hex.EncodeToString(h.Sum(nil)[:16])
	return p, nil
}

func uniqueNames(names []string) []string {
	seen := make(map[string]bool, len(names))
	out := make([]string, 0, len(names))
	for _, n := range names {
		if n != "" && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

// pullSecretSource names one Secret of a workload in errors.
func pullSecretSource(s *corev1.Secret) Source {
	return Source{Kind: KindImagePullSecrets, Namespace: s.Namespace, Name: s.Name}
}

// Auth chooses the credential for repository at host as the kubelet's
// keyring orders them: of every Secret's auths entries for host, the most
// specific one whose path covers the repository; between equally specific
// entries, the first Secret in order. Only that one is used: a registry
// refusing it fails the lookup (the kubelet would try the next ones too;
// here a refusal means a warning or a denial, never a wider credential).
// No entry covering the repository means an anonymous lookup, as for the
// kubelet.
func (p *PullSecrets) Auth(host, repository string) (authn.AuthConfig, error) {
	all, _, err := p.entries(host)
	if err != nil {
		return authn.AuthConfig{}, err
	}
	return cachedCreds{scoped: all}.pick(repository), nil
}

// entries lists every Secret's auths entries for host in the order Auth
// tries them, with the name of the Secret each comes from.
func (p *PullSecrets) entries(host string) ([]scopedAuth, []string, error) {
	var all []scopedAuth
	var from []string
	for _, s := range p.secrets {
		scoped, err := secretAuths(s, host, pullSecretSource(s))
		if err != nil {
			return nil, nil, err
		}
		all = append(all, scoped...)
		for range scoped {
			from = append(from, s.Name)
		}
	}
	idx := make([]int, len(all))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(i, j int) bool { return len(all[idx[i]].path) > len(all[idx[j]].path) })
	sorted, names := make([]scopedAuth, len(all)), make([]string, len(all))
	for i, k := range idx {
		sorted[i], names[i] = all[k], from[k]
	}
	return sorted, names, nil
}

// Presented says which credential Auth gives for repository at host: the
// Secret and its auths key, or why none (never a value). It goes into the
// error of a lookup the registry refused, so that a tenant can tell which
// of its Secrets to fix.
func (p *PullSecrets) Presented(host, repository string) string {
	all, names, err := p.entries(host)
	if err != nil {
		return err.Error()
	}
	for i, s := range all {
		if s.covers(repository) {
			return fmt.Sprintf("presented the auths entry %q of Secret %s/%s", s.key, p.namespace, names[i])
		}
	}
	if len(p.secrets) == 0 {
		return fmt.Sprintf("presented no credential: the object and its ServiceAccount name no pull secret in namespace %s", p.namespace)
	}
	return fmt.Sprintf("presented no credential: no auths entry of the pull secrets (%s) covers %s/%s", p.names(), host, repository)
}

func (p *PullSecrets) names() string {
	n := make([]string, len(p.secrets))
	for i, s := range p.secrets {
		n[i] = p.namespace + "/" + s.Name
	}
	return strings.Join(n, ", ")
}
