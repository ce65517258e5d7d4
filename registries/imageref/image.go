package imageref

import (
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// dockerHub is the canonical name of Docker Hub; the aliases below are the
// other spellings users and docker config files use for it.
const dockerHub = "docker.io"

var dockerHubAliases = map[string]bool{
	"docker.io":               true,
	"index.docker.io":         true,
	"registry-1.docker.io":    true,
	"registry.hub.docker.com": true,
}

// Image is an image reference as written in a container spec, split into
// the parts the webhook needs without normalising what the user wrote.
type Image struct {
	Written string // the whole reference as written
	Repo    string // everything before :tag and @digest, as written
	Tag     string // "" when none was written
	Digest  string // "" when none was written

	host       string // canonical registry host: docker.io for every Docker Hub form
	path       string // repository path at host, without the implicit library/
	implicitNS bool   // a Docker Hub image written without a namespace (nginx)
}

// ParseImage splits ref. It refuses what a container runtime would refuse.
func ParseImage(ref string) (Image, error) {
	if ref == "" {
		return Image{}, fmt.Errorf("image reference is empty")
	}
	if len(ref) > 4096 {
		return Image{}, fmt.Errorf("image reference %s is %d bytes long, more than 4096", Quote(ref), len(ref))
	}
	if err := checkReference(ref); err != nil {
		return Image{}, fmt.Errorf("image reference %s: %v", Quote(ref), err)
	}
	if _, err := name.ParseReference(ref); err != nil {
		// go-containerregistry's message repeats the whole reference.
		msg := strings.ReplaceAll(err.Error(), ref, "it")
		return Image{}, fmt.Errorf("image reference %s: %s", Quote(ref), Quote(msg))
	}
	img := Image{Written: ref, Repo: ref}
	if i := strings.IndexByte(img.Repo, '@'); i >= 0 {
		img.Digest = img.Repo[i+1:]
		img.Repo = img.Repo[:i]
	}
	if i := strings.LastIndexByte(img.Repo, ':'); i >= 0 && !strings.Contains(img.Repo[i:], "/") {
		img.Tag = img.Repo[i+1:]
		img.Repo = img.Repo[:i]
	}
	host, rest := "", img.Repo
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		first := rest[:i]
		if strings.ContainsAny(first, ".:") || first == "localhost" {
			host, rest = first, rest[i+1:]
		}
	}
	if host == "" || dockerHubAliases[host] {
		host = dockerHub
		if strings.HasPrefix(rest, "library/") && strings.Count(rest, "/") == 1 {
			rest = strings.TrimPrefix(rest, "library/")
		}
		img.implicitNS = !strings.Contains(rest, "/")
	}
	img.host, img.path = host, rest
	return img, nil
}

// Path is the repository path at the image's registry host, without the
// library/ Docker Hub adds to an official image written without it.
func (i Image) Path() string { return i.path }

// ImplicitNamespace reports whether the image is on Docker Hub and was
// written without a namespace (nginx), so library/ is implied.
func (i Image) ImplicitNamespace() bool { return i.implicitNS }

// DockerHub reports whether the image lives on Docker Hub, in any spelling.
func (i Image) DockerHub() bool { return i.host == dockerHub }

// Canonical is the form prefixes are matched against: docker.io for every
// Docker Hub spelling, with library/ for official images.
func (i Image) Canonical() string {
	if i.implicitNS {
		return i.host + "/library/" + i.path
	}
	return i.host + "/" + i.path
}

// NormalizePrefix turns a configured prefix into the canonical form images
// are matched against: no scheme, no trailing slash, Docker Hub as docker.io.
func NormalizePrefix(p string) string {
	p = strings.TrimPrefix(strings.TrimPrefix(p, "https://"), "http://")
	p = strings.TrimRight(p, "/")
	host, rest, _ := strings.Cut(p, "/")
	if dockerHubAliases[host] {
		host = dockerHub
	}
	if rest == "" {
		return host
	}
	return host + "/" + rest
}

// HasPathPrefix reports whether s starts with prefix on a path-segment
// boundary: ghcr.io/team matches ghcr.io/team/x, not ghcr.io/teamb/x.
func HasPathPrefix(s, prefix string) bool {
	return s == prefix || strings.HasPrefix(s, prefix+"/")
}

// CanonicalPrefix normalises a prefix of a registry entry or a policy.images
// rule, so both name Docker Hub repositories the same way: no scheme, no
// trailing slash, docker.io for every Docker Hub host, and a prefix without
// a registry host (nginx, acme/app) is on Docker Hub. Match prefixes against
// images with Image.PrefixMatch.
func CanonicalPrefix(p string) string {
	p = NormalizePrefix(p)
	first, _, _ := strings.Cut(p, "/")
	if strings.ContainsAny(first, ".:") || first == "localhost" {
		return p
	}
	return dockerHub + "/" + p
}

// PrefixMatch reports whether a canonical prefix covers the image on a
// path-segment boundary, and how specific the match is (longest wins).
// docker.io/nginx names the official image (docker.io/library/nginx) as well
// as the nginx/ namespace, as every Docker Hub client reads it.
func (i Image) PrefixMatch(prefix string) (specificity int, ok bool) {
	if HasPathPrefix(i.Canonical(), prefix) {
		return len(prefix), true
	}
	if i.implicitNS && i.host+"/"+i.path == prefix {
		return len(prefix) + len("library/"), true
	}
	return 0, false
}

// Quote quotes s (an image reference, or what a registry sent), cut to a
// length that leaves room in a warning or denial for what happened to it.
func Quote(s string) string {
	if len(s) > 100 {
		return fmt.Sprintf("%q… (%d bytes)", s[:80], len(s))
	}
	return fmt.Sprintf("%q", s)
}
