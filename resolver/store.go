package resolver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"github.com/image-pin/image-pin-webhook/registries/client"
)

// Store keeps answers beyond this process: the resolution records that
// every replica shares (--state cluster). The resolver keeps its own
// caches and in-flight dedup in front of it: it asks the store when its
// memory has no answer, or an older one than the store may hold, and tells
// it each new answer before the caller gets it.
//
// A Store must answer Load from memory (an informer's cache), never with a
// request per admission.
type Store interface {
	// Load is the stored answer to q, if the store holds one that may serve
	// an admission in ns (the record's entry admits ns).
	Load(ctx context.Context, q Query, ns string) (Stored, bool)
	// Save stores a answer obtained for an admission in ns; prev is what
	// Load gave before the lookup (nil: nothing). It returns the answer to
	// give, which is the stored one when another replica stored a
	// different answer first. A failed write is an error, and a is to be
	// served from memory.
	Save(ctx context.Context, q Query, ns string, prev *Stored, a Stored) (Stored, error)
}

// History is a Store that also keeps the answers its records gave before
// their current one (--state cluster: status.history), for Resolver.Gave.
type History interface {
	// Gave reports whether q's record, when q's entry admits ns, gives
	// tag and digest or gave them before. Like Load, from memory.
	Gave(ctx context.Context, q Query, ns, tag, digest string) bool
}

// Stored is an answer as a Store keeps it.
type Stored struct {
	Tag, Digest string
	// At is when the registry last confirmed the answer; Changed is when
	// the record started giving this digest.
	At, Changed time.Time
	// Version is the store's own version of the record (a resourceVersion),
	// for optimistic concurrency; opaque to the resolver.
	Version string
}

// Admission is what a Store needs to know of the admission a lookup
// serves. It rides on the context, as Trace does.
type Admission struct {
	Namespace string
	// DryRun: the admission has no side effects, so nothing is stored.
	DryRun bool
}

type admissionKey struct{}

// WithAdmission returns ctx carrying a.
func WithAdmission(ctx context.Context, a Admission) context.Context {
	return context.WithValue(ctx, admissionKey{}, a)
}

func admissionOf(ctx context.Context) Admission {
	a, _ := ctx.Value(admissionKey{}).(Admission)
	return a
}

// AdmissionOf is the admission ctx carries (WithAdmission), for a Store.
func AdmissionOf(ctx context.Context) Admission { return admissionOf(ctx) }

// WithStore makes the resolver keep its answers in s as well.
func WithStore(s Store) Option { return func(o *options) { o.store = s } }

// Hash is the hash of q's full key (entry identity with its credential
// identity, repository, tag, policy): equal for two queries exactly when
// they share one answer. It names a record without naming what the key
// holds (a credential source, a pull secret's name).
func (q Query) Hash() string {
	k := q.key()
	h := sha256.New()
	for _, s := range []string{
		k.entry.Name, k.entry.APIURL, k.entry.Credentials, k.entry.CredentialID, boolString(k.entry.Insecure), k.entry.TLS,
		k.repo, k.tag, string(k.policy.strategy), k.policy.constraint, k.policy.allow, k.policy.ignore, k.policy.platforms,
		strconv.Itoa(int(k.policy.sortMode)),
	} {
		h.Write([]byte(s))
		h.Write([]byte{0xff}) // a byte no field holds: fields cannot run into each other
	}
	return hex.EncodeToString(h.Sum(nil))
}

// KeyTag is the tag the answer's key holds: the tag as written for the
// digest strategy (latest when none), else "".
func (q Query) KeyTag() string { return q.key().tag }

func boolString(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// recall puts what the store holds for q in front of what memory holds:
// the store's answer wins when memory has none or the store's is newer
// (another replica's restart or a refresh that found the tag moved). An
// answer memory holds but the store lacks (a dry run's, or one from before
// the store could take it) is stored now.
func (r *Resolver) recall(ctx context.Context, q Query, k key, old answer, known bool) (answer, bool, *Stored) {
	if r.store == nil {
		return old, known, nil
	}
	adm := admissionOf(ctx)
	s, ok := r.store.Load(ctx, q, adm.Namespace)
	if !ok {
		if known && !adm.DryRun && fresh(old.at, q.Policy.CacheTTL) {
			if got, err := r.store.Save(ctx, q, adm.Namespace, nil, Stored{Tag: old.tag, Digest: old.digest, At: old.at, Changed: old.at}); err == nil {
				old = answer{tag: got.Tag, digest: got.Digest, at: got.At}
				r.keep(client.TenantOf(ctx), k, old)
				return old, true, &got
			}
		}
		return old, known, nil
	}
	// Records keep whole seconds (metav1.Time): a different digest stored
	// within the second memory's answer was obtained is the newer one too.
	changed := s.Changed.After(old.at) || (s.Digest != old.digest && !s.Changed.Before(old.at.Truncate(time.Second)))
	if !known || changed || (s.Digest == old.digest && s.At.After(old.at)) {
		old, known = answer{tag: s.Tag, digest: s.Digest, at: s.At}, true
		r.keep(client.TenantOf(ctx), k, old)
	} else if s.Digest != old.digest && !adm.DryRun && fresh(old.at, q.Policy.CacheTTL) {
		// Memory holds a newer answer the record lacks (a dry run's): it is
		// stored before it is served, or the record's is served.
		got, err := r.store.Save(ctx, q, adm.Namespace, &s, Stored{Tag: old.tag, Digest: old.digest, At: old.at, Changed: old.at})
		if err != nil {
			got = s
		}
		old = answer{tag: got.Tag, digest: got.Digest, at: got.At}
		r.keep(client.TenantOf(ctx), k, old)
		return old, true, &got
	}
	return old, known, &s
}

// remember tells the store a new answer and returns the one to give.
func (r *Resolver) remember(ctx context.Context, q Query, prev *Stored, a answer) answer {
	adm := admissionOf(ctx)
	if r.store == nil || adm.DryRun {
		return a
	}
	if a.at.IsZero() {
		a.at = time.Now()
	}
	got, err := r.store.Save(ctx, q, adm.Namespace, prev, Stored{Tag: a.tag, Digest: a.digest, At: a.at, Changed: a.at})
	if err != nil {
		return a // the store logs and counts its failures; memory still serves
	}
	return answer{tag: got.Tag, digest: got.Digest, at: a.at}
}

// Image is q's image as asked, for people: repository:tag for the
// digest strategy, else the repository with what chooses the tag.
func (q Query) Image() string {
	p := q.Policy
	if p.Strategy == Digest {
		return q.Target.Repository + ":" + q.tag()
	}
	var b strings.Builder
	b.WriteString(q.Target.Repository)
	b.WriteString(" (")
	b.WriteString(string(p.Strategy))
	if p.Strategy == Semver && p.Constraint != nil {
		b.WriteString(" " + p.Constraint.Text)
	}
	b.WriteString(")")
	return b.String()
}
