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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
)

// MaxPullSecrets bounds the Secrets one admission may make the webhook read:
// an object (or its ServiceAccount) naming hundreds must not cost hundreds
// of API requests per admission.
const MaxPullSecrets = 16

// MaxPullSecretBytes bounds the docker config of one pull secret. A docker
// config is a few hundred bytes per registry; a Secret may hold 1 MiB, and
// an object may name MaxPullSecrets of them: without this bound a tenant
// makes every admission hold and parse 16 MiB of JSON.
const MaxPullSecretBytes = 64 << 10

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
	secrets   []pulledSecret
	id        string
}

// pulledSecret is one pull secret as read at admission: its name, its
// resourceVersion and every auths entry, parsed once (a lookup asks for
// them at every registry request).
type pulledSecret struct {
	name, resourceVersion string
	auths                 []scopedAuth
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
		names[i] = s.name + " (resourceVersion " + s.resourceVersion + ")"
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
		ps, err := c.pullSecret(ctx, w.Namespace, n, p.from)
		if err != nil {
			return nil, err
		}
		p.secrets = append(p.secrets, ps)
		fmt.Fprintf(h, "%s\x00%s\x00", ps.name, ps.resourceVersion)
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

// Auths lists the credentials for repository at host in the order the
// kubelet's keyring tries them: of every Secret's auths entries for host,
// those whose path covers the repository, the most specific first, and
// between equally specific ones the Secrets in order; a credential that
// appears twice is tried once, and at most MaxPullSecrets are tried. No entry
// covering the repository means one anonymous attempt, as for the kubelet.
// The registry refusing one (401, 403) moves the lookup to the next
// (client.DoWith): every one of them is a credential the Pod presents.
func (p *PullSecrets) Auths(host, repository string) []authn.AuthConfig {
	cov, _ := p.covering(host, repository)
	if len(cov) == 0 {
		return []authn.AuthConfig{{}}
	}
	out := make([]authn.AuthConfig, len(cov))
	for i, s := range cov {
		out[i] = s.auth
	}
	return out
}

// covering lists the auths entries Auths tries, with the name of the Secret
// each comes from.
func (p *PullSecrets) covering(host, repository string) ([]scopedAuth, []string) {
	var all []scopedAuth
	var from []string
	want := normalizeHost(host)
	for _, s := range p.secrets {
		for _, a := range s.auths {
			if a.host == want && a.covers(repository) {
				all = append(all, a)
				from = append(from, s.name)
			}
		}
	}
	idx := make([]int, len(all))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(i, j int) bool { return len(all[idx[i]].path) > len(all[idx[j]].path) })
	var out []scopedAuth
	var names []string
	seen := map[authn.AuthConfig]bool{}
	for _, k := range idx {
		if seen[all[k].auth] || len(out) == MaxPullSecrets {
			continue
		}
		seen[all[k].auth] = true
		out, names = append(out, all[k]), append(names, from[k])
	}
	return out, names
}

// Presented says which credentials Auths gives for repository at host: each
// Secret and auths key, in order, or why there are none (never a value). It
// goes into the error of a lookup the registry refused, so that a tenant can
// tell which of its Secrets to fix.
func (p *PullSecrets) Presented(host, repository string) string {
	cov, names := p.covering(host, repository)
	if len(cov) == 0 {
		if len(p.secrets) == 0 {
			// No namespace named: this failure is kept under the shared
			// anonymous ID and served to every namespace presenting none.
			return "presented no credential: the object and its ServiceAccount name no pull secret"
		}
		return fmt.Sprintf("presented no credential: no auths entry of the pull secrets (%s) covers %s/%s", p.names(), host, repository)
	}
	tried := make([]string, len(cov))
	for i, s := range cov {
		tried[i] = fmt.Sprintf("the auths entry %q of Secret %s/%s", keyForMessage(s.key), p.namespace, names[i])
	}
	if len(tried) == 1 {
		return "presented " + tried[0]
	}
	return "presented, in turn, " + strings.Join(tried, ", ")
}

func (p *PullSecrets) names() string {
	n := make([]string, len(p.secrets))
	for i, s := range p.secrets {
		n[i] = p.namespace + "/" + s.name
	}
	return strings.Join(n, ", ")
}

// maxDecodedSecrets bounds the pull Secrets kept decoded across admissions:
// each holds at most MaxPullSecretBytes of docker config, a few hundred
// bytes as usually written.
const maxDecodedSecrets = 256

// pullSecret reads one pull Secret, decoding it at most once per
// resourceVersion across admissions. A metadata-only read (the API server
// sends the Secret's metadata, never its data) gives the resourceVersion;
// only a version not seen before is read whole and decoded. The API offers
// no bound on the size of a read, so that bound is in how rarely the whole
// Secret is read: once per change of it.
func (c *Cache) pullSecret(ctx context.Context, ns, name, from string) (pulledSecret, error) {
	// The names come from the tenant's object: checked here, since the
	// metadata client puts them into the request path as they are.
	if len(validation.IsDNS1123Label(ns)) > 0 {
		return pulledSecret{}, fmt.Errorf("%s: the object's namespace %q is not a namespace name", KindImagePullSecrets, ns)
	}
	if len(validation.IsDNS1123Subdomain(name)) > 0 {
		return pulledSecret{}, fmt.Errorf("%s: %q (named by %s) is not a Secret name", KindImagePullSecrets, name, from)
	}
	key := types.NamespacedName{Namespace: ns, Name: name}
	meta := &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}}
	if err := c.secrets.Get(ctx, key, meta); err != nil {
		return pulledSecret{}, fmt.Errorf("%s: reading Secret %s/%s (named by %s): %w", KindImagePullSecrets, ns, name, from, err)
	}
	if ps, ok := c.decoded.Get(ns + "/" + name + "/" + meta.ResourceVersion); ok {
		return ps, nil
	}
	var s corev1.Secret
	if err := c.secrets.Get(ctx, key, &s); err != nil {
		return pulledSecret{}, fmt.Errorf("%s: reading Secret %s/%s (named by %s): %w", KindImagePullSecrets, ns, name, from, err)
	}
	if n := len(s.Data[corev1.DockerConfigJsonKey]) + len(s.Data[corev1.DockerConfigKey]); n > MaxPullSecretBytes {
		return pulledSecret{}, fmt.Errorf("credentials from %s: its docker config is %d KiB, more than %d KiB", pullSecretSource(&s), n>>10, MaxPullSecretBytes>>10)
	}
	// Parsed now, so a broken Secret fails every container of its
	// entry, not only those whose registry it has an entry for.
	auths, err := secretAuths(&s, "", pullSecretSource(&s))
	if err != nil {
		return pulledSecret{}, err
	}
	ps := pulledSecret{name: s.Name, resourceVersion: s.ResourceVersion, auths: auths}
	c.decoded.Add(ns+"/"+name+"/"+s.ResourceVersion, ps)
	return ps, nil
}
