package cluster

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/crypto/bcrypt"
)

// Registry is one distribution `registry` process on loopback.
type Registry struct {
	Host   string // 127.0.0.1:port
	URL    string
	user   string
	pass   string
	cmd    *exec.Cmd
	rt     http.RoundTripper
	cfg    string
	binary string
	data   string // the filesystem storage driver's root directory
}

// Kind is how a Registry authenticates.
type Kind int

// Kinds of registries.
const (
	Plain       Kind = iota // anonymous, plain HTTP
	TLSHtpasswd             // HTTPS with Basic auth from an htpasswd file
	Token                   // plain HTTP with bearer tokens from a TokenServer
)

// RegistryOptions say how a Registry authenticates. The zero value is a
// Plain registry.
type RegistryOptions struct {
	Kind Kind
	// Authority issues a TLSHtpasswd registry's serving certificate.
	Authority *CA
	// Tokens issues a Token registry's bearer tokens.
	Tokens *TokenServer
	// User and Pass are the credentials a TLSHtpasswd registry accepts, and
	// those Push and Get present to a TLSHtpasswd or Token registry.
	User, Pass string
}

// StartRegistry writes a config for o.Kind into dir and starts the registry
// binary.
func StartRegistry(binary, dir string, o RegistryOptions) (*Registry, error) {
	switch {
	case o.Kind == TLSHtpasswd && o.Authority == nil:
		return nil, errors.New("a TLSHtpasswd registry needs an Authority")
	case o.Kind == Token && o.Tokens == nil:
		return nil, errors.New("a Token registry needs Tokens")
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	r := &Registry{Host: fmt.Sprintf("127.0.0.1:%d", port), user: o.User, pass: o.Pass, binary: binary, rt: http.DefaultTransport,
		data: filepath.Join(dir, "data")}
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
  secret: e2e-secret
`, r.data, r.Host)
	r.URL = "http://" + r.Host
	switch o.Kind {
	case TLSHtpasswd:
		if err := o.Authority.Issue(filepath.Join(dir, "tls")); err != nil {
			return nil, err
		}
		hash, err := bcrypt.GenerateFromPassword([]byte(o.Pass), bcrypt.MinCost)
		if err != nil {
			return nil, err
		}
		htpasswd := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(htpasswd, []byte(o.User+":"+string(hash)+"\n"), 0o600); err != nil {
			return nil, err
		}
		cfg += fmt.Sprintf("  tls:\n    certificate: %s\n    key: %s\nauth:\n  htpasswd:\n    realm: e2e\n    path: %s\n",
			filepath.Join(dir, "tls", "tls.crt"), filepath.Join(dir, "tls", "tls.key"), htpasswd)
		r.URL = "https://" + r.Host
		r.rt = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: o.Authority.Pool()}}
	case Token:
		bundle := filepath.Join(dir, "token-ca.pem")
		if err := os.WriteFile(bundle, o.Tokens.certPEM, 0o644); err != nil {
			return nil, err
		}
		cfg += fmt.Sprintf("auth:\n  token:\n    realm: %s/token\n    service: e2e-registry\n    issuer: e2e-token-issuer\n    rootcertbundle: %s\n", o.Tokens.url, bundle)
	}
	r.cfg = filepath.Join(dir, "config.yml")
	if err := os.WriteFile(r.cfg, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	return r, r.Start()
}

// Start (re)starts the registry process and waits until it answers.
func (r *Registry) Start() error {
	r.cmd = exec.Command(r.binary, "serve", r.cfg)
	r.cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none", "OTEL_SDK_DISABLED=true")
	logFile, err := os.OpenFile(r.cfg+".log", os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	r.cmd.Stdout, r.cmd.Stderr = logFile, logFile
	if err := r.cmd.Start(); err != nil {
		return err
	}
	client := &http.Client{Transport: r.rt, Timeout: time.Second}
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) { // the bound only ends a broken start
		if resp, err := client.Get(r.URL + "/v2/"); err == nil {
			resp.Body.Close()
			return nil
		}
	}
	return fmt.Errorf("registry on %s did not start", r.Host)
}

// Stop kills the registry process.
func (r *Registry) Stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
		r.cmd = nil
	}
}

func (r *Registry) opts() []remote.Option {
	o := []remote.Option{remote.WithTransport(r.rt)}
	if r.user != "" {
		o = append(o, remote.WithAuth(&authn.Basic{Username: r.user, Password: r.pass}))
	}
	return o
}

func (r *Registry) ref(repoTag string) (name.Reference, error) {
	var opts []name.Option
	if strings.HasPrefix(r.URL, "http:") {
		opts = append(opts, name.Insecure)
	}
	return name.ParseReference(r.Host+"/"+repoTag, opts...)
}

// Push pushes a random image as repo:tag and returns its digest.
func (r *Registry) Push(repoTag string) (string, error) {
	img, err := random.Image(512, 1)
	if err != nil {
		return "", err
	}
	ref, err := r.ref(repoTag)
	if err != nil {
		return "", err
	}
	if err := remote.Write(ref, img, r.opts()...); err != nil {
		return "", fmt.Errorf("pushing %s: %w", ref, err)
	}
	d, err := img.Digest()
	return d.String(), err
}

// PushIndex pushes a linux/amd64 + linux/arm64 index and returns its digest.
func (r *Registry) PushIndex(repoTag string) (string, error) {
	var idx v1.ImageIndex = empty.Index
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := random.Image(512, 1)
		if err != nil {
			return "", err
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	ref, err := r.ref(repoTag)
	if err != nil {
		return "", err
	}
	if err := remote.WriteIndex(ref, idx, r.opts()...); err != nil {
		return "", err
	}
	d, err := idx.Digest()
	return d.String(), err
}

// TokenServer is the Docker token endpoint of the token registry: Basic
// credentials in, an ES256 JWT for the asked scope out, as Docker Hub,
// GHCR and ECR work.
type TokenServer struct {
	url     string
	certPEM []byte
	key     *ecdsa.PrivateKey
	kid     string
	user    string
	pass    string
	srv     *http.Server

	mu     sync.Mutex
	grants map[string]grant // robot accounts limited to one repository prefix
}

type grant struct{ pass, prefix string }

// Grant adds a robot account: user, logging in with pass, gets tokens for
// the repositories under prefix/ only, as a registry with one robot account
// per team gives them. Asked for any other repository, it gets a token
// without that access, which the registry refuses (insufficient_scope).
func (t *TokenServer) Grant(user, pass, prefix string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.grants == nil {
		t.grants = map[string]grant{}
	}
	t.grants[user] = grant{pass: pass, prefix: prefix}
}

// Close stops the token server.
func (t *TokenServer) Close() error { return t.srv.Close() }

// StartTokenServer starts a token server accepting user and pass.
func StartTokenServer(user, pass string) (*TokenServer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "e2e-token-issuer"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	x := base64.RawURLEncoding.EncodeToString(key.PublicKey.X.Bytes())
	y := base64.RawURLEncoding.EncodeToString(key.PublicKey.Y.Bytes())
	sum := sha256.Sum256([]byte(fmt.Sprintf(`{"crv":"P-256","kty":"EC","x":"%s","y":"%s"}`, x, y)))
	t := &TokenServer{certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), key: key,
		kid: base64.RawURLEncoding.EncodeToString(sum[:]), user: user, pass: pass}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	// A hostname, not 127.0.0.1: go-containerregistry refuses token realms
	// that are private or loopback IP literals (SSRF protection).
	t.url = fmt.Sprintf("http://localhost:%d", l.Addr().(*net.TCPAddr).Port)
	t.srv = &http.Server{Handler: t, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = t.srv.Serve(l) }()
	return t, nil
}

func (t *TokenServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u, p, ok := r.BasicAuth()
	t.mu.Lock()
	g, robot := t.grants[u]
	t.mu.Unlock()
	robot = robot && ok && p == g.pass
	if !robot && (!ok || u != t.user || p != t.pass) {
		http.Error(w, `{"details":"bad credentials"}`, http.StatusUnauthorized)
		return
	}
	var access []map[string]any
	for _, scope := range r.URL.Query()["scope"] {
		parts := strings.Split(scope, ":")
		if robot && (len(parts) != 3 || !strings.HasPrefix(parts[1], g.prefix+"/")) {
			continue
		}
		if len(parts) == 3 {
			access = append(access, map[string]any{"type": parts[0], "name": parts[1], "actions": strings.Split(parts[2], ",")})
		}
	}
	now := time.Now()
	claims := map[string]any{"iss": "e2e-token-issuer", "sub": u, "aud": "e2e-registry", "exp": now.Add(5 * time.Minute).Unix(),
		"nbf": now.Add(-time.Minute).Unix(), "iat": now.Unix(), "jti": fmt.Sprint(now.UnixNano()), "access": access}
	tok, err := t.sign(claims)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"token": tok, "access_token": tok, "expires_in": 300})
}

func (t *TokenServer) sign(claims map[string]any) (string, error) {
	h, _ := json.Marshal(map[string]string{"alg": "ES256", "typ": "JWT", "kid": t.kid})
	c, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	sum := sha256.Sum256([]byte(input))
	rr, ss, err := ecdsa.Sign(rand.Reader, t.key, sum[:])
	if err != nil {
		return "", err
	}
	sig := make([]byte, 64)
	rr.FillBytes(sig[:32])
	ss.FillBytes(sig[32:])
	return input + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// Get fetches the manifest of repo:tag.
func (r *Registry) Get(repoTag string) (*remote.Descriptor, error) {
	ref, err := r.ref(repoTag)
	if err != nil {
		return nil, err
	}
	return remote.Get(ref, r.opts()...)
}

// PutManifest tags an existing manifest as repo:tag with one PUT.
func (r *Registry) PutManifest(repoTag string, desc *remote.Descriptor) error {
	repo, tag, _ := strings.Cut(repoTag, ":")
	req, err := http.NewRequest(http.MethodPut, fmt.Sprintf("%s/v2/%s/manifests/%s", r.URL, repo, tag), bytes.NewReader(desc.Manifest))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", string(desc.MediaType))
	if r.user != "" {
		req.SetBasicAuth(r.user, r.pass)
	}
	resp, err := (&http.Client{Transport: r.rt}).Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("PUT %s: %s", repoTag, resp.Status)
	}
	return nil
}

// TagOnDisk tags the manifest desc, already pushed to repo, as each of tags
// by writing the links the registry writes for a tag into its storage
// directory (distribution's layout: _manifests/tags/<tag>/current/link and
// its index entry), then reads the last tag back through the registry's
// API. Thousands of tags take a moment this way, where a PUT each (with a
// bcrypt check per request on a TLSHtpasswd registry) takes minutes on a
// busy machine; the registry then serves them as if they were pushed.
func (r *Registry) TagOnDisk(repo string, desc *remote.Descriptor, tags ...string) error {
	if len(tags) == 0 {
		return nil
	}
	dgst := desc.Digest.String()
	base := filepath.Join(r.data, "docker", "registry", "v2", "repositories", filepath.FromSlash(repo), "_manifests")
	if _, err := os.Stat(filepath.Join(base, "revisions", desc.Digest.Algorithm, desc.Digest.Hex, "link")); err != nil {
		return fmt.Errorf("tagging %s on disk: the manifest %s is not in the repository: %w", repo, dgst, err)
	}
	for _, tag := range tags {
		for _, dir := range []string{
			filepath.Join(base, "tags", tag, "current"),
			filepath.Join(base, "tags", tag, "index", desc.Digest.Algorithm, desc.Digest.Hex),
		} {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(dir, "link"), []byte(dgst), 0o644); err != nil {
				return err
			}
		}
	}
	last := repo + ":" + tags[len(tags)-1]
	got, err := r.Get(last)
	if err != nil {
		return fmt.Errorf("tagged %s on disk, but the registry does not serve it: %w", last, err)
	}
	if got.Digest != desc.Digest {
		return fmt.Errorf("tagged %s on disk as %s, but the registry serves %s", last, dgst, got.Digest)
	}
	return nil
}

// BlobOnDisk stores what content yields as a blob in the registry's storage
// (distribution's layout: blobs/sha256/<first two>/<hex>/data), hashing it
// as it is written, so that a blob of hundreds of MiB costs its disk space
// and never its size in memory. It returns the blob's digest and size. The
// blob is in no repository until LinkBlobOnDisk links it, as a push or a
// cross-repository mount would; RemoveBlobOnDisk deletes it.
func (r *Registry) BlobOnDisk(content io.Reader) (v1.Hash, int64, error) {
	root := filepath.Join(r.data, "docker", "registry", "v2", "blobs", "sha256")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return v1.Hash{}, 0, err
	}
	f, err := os.CreateTemp(root, "upload-")
	if err != nil {
		return v1.Hash{}, 0, err
	}
	defer os.Remove(f.Name()) // gone once renamed
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), content)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return v1.Hash{}, 0, err
	}
	dgst := v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", h.Sum(nil))}
	dir := filepath.Join(root, dgst.Hex[:2], dgst.Hex)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return v1.Hash{}, 0, err
	}
	return dgst, n, os.Rename(f.Name(), filepath.Join(dir, "data"))
}

// LinkBlobOnDisk links the blob dgst, stored with BlobOnDisk, into repo
// (repositories/<repo>/_layers/sha256/<hex>/link): the registry then serves
// it from repo and accepts manifests of repo that reference it. Linked into
// many repositories it is stored once.
func (r *Registry) LinkBlobOnDisk(repo string, dgst v1.Hash) error {
	dir := filepath.Join(r.data, "docker", "registry", "v2", "repositories", filepath.FromSlash(repo), "_layers", dgst.Algorithm, dgst.Hex)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "link"), []byte(dgst.String()), 0o644)
}

// RemoveBlobOnDisk deletes the data of the blob dgst (the repositories'
// links stay, and point at nothing).
func (r *Registry) RemoveBlobOnDisk(dgst v1.Hash) error {
	return os.RemoveAll(filepath.Join(r.data, "docker", "registry", "v2", "blobs", dgst.Algorithm, dgst.Hex[:2], dgst.Hex))
}

// ManifestOnDisk stores raw as a manifest of repo, tagged as each of tags,
// by writing what a manifest PUT writes (its blob, its revision link, the
// tags' links) without the registry's checks: the registry then serves it
// as it serves what a tenant pushed, even one larger than the 4 MiB a PUT
// accepts (what another registry might store and send). Its references are
// not checked. It returns the manifest's digest.
func (r *Registry) ManifestOnDisk(repo string, raw []byte, tags ...string) (v1.Hash, error) {
	dgst, _, err := r.BlobOnDisk(bytes.NewReader(raw))
	if err != nil {
		return v1.Hash{}, err
	}
	return dgst, r.LinkManifestOnDisk(repo, dgst, tags...)
}

// LinkManifestOnDisk makes the manifest dgst, already stored (by
// ManifestOnDisk or a push to another repository), a manifest of repo
// tagged as each of tags: stored once, it is served from every repository
// it is linked into.
func (r *Registry) LinkManifestOnDisk(repo string, dgst v1.Hash, tags ...string) error {
	dir := filepath.Join(r.data, "docker", "registry", "v2", "repositories", filepath.FromSlash(repo), "_manifests", "revisions", dgst.Algorithm, dgst.Hex)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "link"), []byte(dgst.String()), 0o644); err != nil {
		return err
	}
	return r.TagOnDisk(repo, &remote.Descriptor{Descriptor: v1.Descriptor{Digest: dgst}}, tags...)
}
