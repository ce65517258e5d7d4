package credentials

import (
	"fmt"
	"strings"
)

// Kind is what a credentials field names before its first colon: where the
// credentials come from.
type Kind string

// The credential kinds; kinds below is the one table of what each takes.
const (
	KindEnv        Kind = "env"        // env:VAR, user:pass (or a token) in a variable of the webhook
	KindSecret     Kind = "secret"     // secret:ns/name#key, user:pass in a key of a Secret
	KindPullSecret Kind = "pullsecret" // pullsecret:ns/name, a docker config Secret
	KindExt        Kind = "ext"        // ext:/path, what a script prints
	KindAWS        Kind = "aws"        // the pod's AWS workload identity, for ECR
	KindGCP        Kind = "gcp"        // the pod's GCP workload identity, for Artifact Registry and GCR
	KindAzure      Kind = "azure"      // the pod's Azure workload identity, for ACR
	// KindImagePullSecrets is the credential kind whose credentials are not
	// in the config but come with each admitted object: its own pull
	// secrets, or its ServiceAccount's.
	KindImagePullSecrets Kind = "imagepullsecrets"
)

// kindSpec is one row of the table of kinds.
type kindSpec struct {
	kind Kind
	form string // as the usage message shows it
	// bare: the kind needs no parameter, so it is written without a colon
	// (YAML reads an unquoted "aws:" as a mapping); "aws:" quoted, and
	// aws: with parameters, keep working.
	bare bool
	// cloud: a workload identity login (cloud.go), options after the colon.
	cloud bool
}

// kinds is the one table of credential kinds, in the order messages list
// them.
var kinds = []kindSpec{
	{kind: KindEnv, form: "env:VAR"},
	{kind: KindSecret, form: "secret:ns/name#key"},
	{kind: KindPullSecret, form: "pullsecret:ns/name"},
	{kind: KindExt, form: "ext:/path"},
	{kind: KindAWS, form: "aws", bare: true, cloud: true},
	{kind: KindGCP, form: "gcp", bare: true, cloud: true},
	{kind: KindAzure, form: "azure", bare: true, cloud: true},
	{kind: KindImagePullSecrets, form: "imagepullsecrets", bare: true},
}

func lookupKind(k Kind) (kindSpec, bool) {
	for _, s := range kinds {
		if s.kind == k {
			return s, true
		}
	}
	return kindSpec{}, false
}

// IsCloud reports whether k logs in with the pod's workload identity.
func (k Kind) IsCloud() bool { s, _ := lookupKind(k); return s.cloud }

// BareKinds are the kinds written without a colon (the contract's "credential
// kinds without parameters"), in table order.
func BareKinds() []Kind {
	var out []Kind
	for _, s := range kinds {
		if s.bare {
			out = append(out, s.kind)
		}
	}
	return out
}

// usage lists every kind as it is written, for the message of a field that
// is none of them.
func usage() string {
	forms := make([]string, len(kinds))
	for i, s := range kinds {
		forms[i] = s.form
	}
	return strings.Join(forms[:len(forms)-1], ", ") + " or " + forms[len(forms)-1] +
		" (the cloud kinds optionally with options after a colon, e.g. aws:region=eu-west-1)"
}

// Source is where an entry's credentials come from, as written in the
// config: env:VAR, secret:ns/name#key, pullsecret:ns/name, ext:/path, a
// cloud workload identity: aws, gcp, azure, each optionally with options
// after a colon (cloud.go), or
// imagepullsecrets, the admitted object's own (pullsecrets.go). It is parsed
// once, when the config is decoded.
// Its String is the source as written and never holds a secret value.
type Source struct {
	Kind      Kind
	Var       string // env
	Namespace string // secret, pullsecret; imagepullsecrets: the Secret read, in errors
	Name      string // secret, pullsecret; imagepullsecrets: the Secret read, in errors
	Key       string // secret
	Path      string // ext
	Cloud     string // aws, gcp, azure: the options after the colon, e.g. region=eu-west-1
}

func (s Source) String() string {
	switch {
	case s.Kind == KindEnv:
		return "env:" + s.Var
	case s.Kind == KindSecret:
		return "secret:" + s.Namespace + "/" + s.Name + "#" + s.Key
	case s.Kind == KindPullSecret:
		return "pullsecret:" + s.Namespace + "/" + s.Name
	case s.Kind == KindExt:
		return "ext:" + s.Path
	case s.Kind == KindImagePullSecrets && s.Name != "":
		return string(KindImagePullSecrets) + " (Secret " + s.Namespace + "/" + s.Name + ")"
	case s.Kind == KindImagePullSecrets, s.Kind.IsCloud() && s.Cloud == "":
		return string(s.Kind)
	case s.Kind.IsCloud():
		return string(s.Kind) + ":" + s.Cloud
	}
	return ""
}

// ParseSource parses a credentials field. Errors quote the field only up to
// its kind: a mistyped source may hold a secret pasted in by mistake.
func ParseSource(v string) (*Source, error) {
	k, rest, ok := strings.Cut(v, ":")
	kind := Kind(k)
	if spec, known := lookupKind(kind); !ok && known && spec.bare {
		return &Source{Kind: kind}, nil
	}
	if !ok {
		return nil, fmt.Errorf("must be %s", usage())
	}
	switch kind {
	case KindEnv:
		if rest == "" || strings.ContainsAny(rest, "= \t") {
			return nil, fmt.Errorf("env: needs a variable name")
		}
		return &Source{Kind: kind, Var: rest}, nil
	case KindSecret:
		ref, key, ok := strings.Cut(rest, "#")
		ns, name, ok2 := strings.Cut(ref, "/")
		if !ok || !ok2 || ns == "" || name == "" || key == "" || strings.Contains(name, "/") {
			return nil, fmt.Errorf("secret: must be secret:namespace/name#key")
		}
		return &Source{Kind: kind, Namespace: ns, Name: name, Key: key}, nil
	case KindPullSecret:
		ns, name, ok := strings.Cut(rest, "/")
		if !ok || ns == "" || name == "" || strings.ContainsAny(name, "/#") {
			return nil, fmt.Errorf("pullsecret: must be pullsecret:namespace/name")
		}
		return &Source{Kind: kind, Namespace: ns, Name: name}, nil
	case KindExt:
		if !strings.HasPrefix(rest, "/") {
			return nil, fmt.Errorf("ext: needs an absolute path to a script")
		}
		return &Source{Kind: kind, Path: rest}, nil
	}
	if kind.IsCloud() {
		if _, err := cloudOptions(kind, rest); err != nil {
			return nil, err
		}
		return &Source{Kind: kind, Cloud: rest}, nil
	}
	if kind == KindImagePullSecrets {
		return nil, fmt.Errorf("%s takes no parameter: write it without a colon", kind)
	}
	return nil, fmt.Errorf("unknown kind before the first colon: must be %s", usage())
}
