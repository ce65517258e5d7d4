package credentials

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	corev1 "k8s.io/api/core/v1"

	"github.com/image-pin/image-pin-webhook/registries/imageref"
)

// A docker config Secret (.dockerconfigjson, or the legacy .dockercfg), as
// pullsecret: sources and the admitted object's imagePullSecrets give
// credentials: its auths entries, matched to a registry host and a
// repository path as the kubelet matches them.

type dockerConfig struct {
	Auths map[string]struct {
		Auth     string `json:"auth"`
		Username string `json:"username"`
		Password string `json:"password"`
	} `json:"auths"`
}

// scopedAuth is one auths entry of a pull secret for the registry host:
// path is the repository path it is limited to ("" for the whole host).
type scopedAuth struct {
	key  string
	host string // normalised, as normalizeHost gives it
	path string
	auth authn.AuthConfig
}

// covers reports whether the entry serves the repository path: a key
// without a path serves the whole host.
func (s scopedAuth) covers(repository string) bool {
	return s.path == "" || repository == s.path || strings.HasPrefix(repository, s.path+"/")
}

// pick chooses the credentials for a repository path: of a pull secret's
// entries for the host, the most specific one whose path covers it, as the
// kubelet does (ghcr.io/org-a before ghcr.io; docker.io and
// https://index.docker.io/v1/ are one key, the first in order taken).
func (cc cachedCreds) pick(repository string) authn.AuthConfig {
	for _, s := range cc.scoped {
		if s.covers(repository) {
			return s.auth
		}
	}
	if len(cc.scoped) > 0 {
		return authn.AuthConfig{} // no entry covers it: anonymous
	}
	return cc.auth
}

// pullSecretAuths is secretAuths for a pullsecret: source, which must
// have an entry for host.
func pullSecretAuths(s *corev1.Secret, host string, src Source) ([]scopedAuth, error) {
	out, err := secretAuths(s, host, src)
	if err == nil && len(out) == 0 {
		return nil, fmt.Errorf("credentials from %s: no auths entry for %q", src, host)
	}
	return out, err
}

// secretAuths reads a .dockerconfigjson (or legacy .dockercfg) and keeps
// the entries for host, comparing hosts without scheme, with every Docker
// Hub name as one, most specific (longest path) first, then by key. With
// host "", it keeps every entry, each with its host.
func secretAuths(s *corev1.Secret, host string, src Source) ([]scopedAuth, error) {
	var cfg dockerConfig
	if b, ok := s.Data[corev1.DockerConfigJsonKey]; ok {
		if err := json.Unmarshal(b, &cfg); err != nil {
			return nil, fmt.Errorf("credentials from %s: %s is not valid JSON", src, corev1.DockerConfigJsonKey)
		}
	} else if b, ok := s.Data[corev1.DockerConfigKey]; ok {
		if err := json.Unmarshal(b, &cfg.Auths); err != nil {
			return nil, fmt.Errorf("credentials from %s: %s is not valid JSON", src, corev1.DockerConfigKey)
		}
	} else {
		return nil, fmt.Errorf("credentials from %s: the secret has no %s", src, corev1.DockerConfigJsonKey)
	}
	want := normalizeHost(host)
	var out []scopedAuth
	for k, a := range cfg.Auths {
		h, path := splitAuthKey(k)
		if h != want && host != "" {
			continue
		}
		sa := scopedAuth{key: k, host: h, path: path}
		if a.Username != "" || a.Password != "" {
			sa.auth = authn.AuthConfig{Username: a.Username, Password: a.Password}
		} else {
			raw, err := base64.StdEncoding.DecodeString(a.Auth)
			if err != nil {
				return nil, fmt.Errorf("credentials from %s: the auth of %q is not base64", src, keyForMessage(k))
			}
			if sa.auth, err = parseUserPass(string(raw), src); err != nil {
				return nil, err
			}
		}
		out = append(out, sa)
	}
	sort.Slice(out, func(i, j int) bool {
		if len(out[i].path) != len(out[j].path) {
			return len(out[i].path) > len(out[j].path)
		}
		return out[i].key < out[j].key
	})
	return out, nil
}

// keyForMessage is an auths key as messages may show it: a key written with
// user:password@ before its host would otherwise print the password.
func keyForMessage(k string) string {
	if i := strings.LastIndex(k, "@"); i >= 0 {
		scheme := ""
		if j := strings.Index(k, "://"); j >= 0 && j < i {
			scheme = k[:j+3]
		}
		return scheme + "…@" + k[i+1:]
	}
	return k
}

// splitAuthKey reads an auths key as host and repository path, without
// scheme, and without the /v1/ or /v2/ API path docker login writes.
func splitAuthKey(k string) (host, path string) {
	k = strings.TrimPrefix(strings.TrimPrefix(k, "https://"), "http://")
	host, path, _ = strings.Cut(k, "/")
	path = strings.Trim(path, "/")
	if path == "v1" || path == "v2" {
		path = ""
	}
	return normalizeHost(host), path
}

// normalizeHost is h without scheme or path, with every Docker Hub name as
// docker.io.
func normalizeHost(h string) string {
	h = strings.TrimPrefix(strings.TrimPrefix(h, "https://"), "http://")
	h, _, _ = strings.Cut(h, "/")
	return imageref.NormalizePrefix(h)
}
