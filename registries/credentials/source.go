package credentials

import (
	"fmt"
	"strings"
)

// Source is where an entry's credentials come from, as written in the
// config: env:VAR, secret:ns/name#key, pullsecret:ns/name, ext:/path, a
// cloud workload identity: aws, gcp, azure, each optionally with options
// after a colon (cloud.go), or
// imagepullsecrets, the admitted object's own (pullsecrets.go).
// Its String is the source as written and never holds a secret value.
type Source struct {
	Kind      string // env, secret, pullsecret, ext, aws, gcp, azure or imagepullsecrets
	Var       string // env
	Namespace string // secret, pullsecret; imagepullsecrets: the Secret read, in errors
	Name      string // secret, pullsecret; imagepullsecrets: the Secret read, in errors
	Key       string // secret
	Path      string // ext
	Cloud     string // aws, gcp, azure: the options after the colon, e.g. region=eu-west-1
}

func (s Source) String() string {
	switch s.Kind {
	case "env":
		return "env:" + s.Var
	case "secret":
		return "secret:" + s.Namespace + "/" + s.Name + "#" + s.Key
	case "pullsecret":
		return "pullsecret:" + s.Namespace + "/" + s.Name
	case "ext":
		return "ext:" + s.Path
	case KindImagePullSecrets:
		if s.Name != "" {
			return KindImagePullSecrets + " (Secret " + s.Namespace + "/" + s.Name + ")"
		}
		return KindImagePullSecrets
	}
	if isCloudKind(s.Kind) && s.Cloud == "" {
		return s.Kind
	}
	if isCloudKind(s.Kind) {
		return s.Kind + ":" + s.Cloud
	}
	return ""
}

// ParseSource parses a credentials field. Errors quote the field only up to
// its kind: a mistyped source may hold a secret pasted in by mistake.
func ParseSource(v string) (*Source, error) {
	kind, rest, ok := strings.Cut(v, ":")
	if v == KindImagePullSecrets {
		return &Source{Kind: KindImagePullSecrets}, nil
	}
	if !ok && isCloudKind(v) {
		// YAML reads an unquoted "aws:" as a mapping, so the kinds that
		// need no parameter are written without the colon.
		return &Source{Kind: v}, nil
	}
	if !ok {
		return nil, fmt.Errorf("must be env:VAR, secret:ns/name#key, pullsecret:ns/name, ext:/path, aws, gcp, azure (optionally with options after a colon, e.g. aws:region=eu-west-1) or imagepullsecrets")
	}
	switch kind {
	case "env":
		if rest == "" || strings.ContainsAny(rest, "= \t") {
			return nil, fmt.Errorf("env: needs a variable name")
		}
		return &Source{Kind: kind, Var: rest}, nil
	case "secret":
		ref, key, ok := strings.Cut(rest, "#")
		ns, name, ok2 := strings.Cut(ref, "/")
		if !ok || !ok2 || ns == "" || name == "" || key == "" || strings.Contains(name, "/") {
			return nil, fmt.Errorf("secret: must be secret:namespace/name#key")
		}
		return &Source{Kind: kind, Namespace: ns, Name: name, Key: key}, nil
	case "pullsecret":
		ns, name, ok := strings.Cut(rest, "/")
		if !ok || ns == "" || name == "" || strings.ContainsAny(name, "/#") {
			return nil, fmt.Errorf("pullsecret: must be pullsecret:namespace/name")
		}
		return &Source{Kind: kind, Namespace: ns, Name: name}, nil
	case "ext":
		if !strings.HasPrefix(rest, "/") {
			return nil, fmt.Errorf("ext: needs an absolute path to a script")
		}
		return &Source{Kind: kind, Path: rest}, nil
	}
	if isCloudKind(kind) {
		if _, err := cloudOptions(kind, rest); err != nil {
			return nil, err
		}
		return &Source{Kind: kind, Cloud: rest}, nil
	}
	return nil, fmt.Errorf("unknown kind before the first colon: must be env, secret, pullsecret, ext, aws, gcp, azure, or imagepullsecrets without a colon")
}
