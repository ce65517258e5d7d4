// Package faults is the fault matrix: a fault-injecting proxy in front of a
// real distribution registry, and the admission handler in process, so that
// every row can also check that no goroutine is left behind. Each fault runs
// under on_error ignore and fail. `make e2e` runs it (it needs the registry
// binary that hack/envtest-assets.sh provides).
package faults

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/image-pin/image-pin-webhook/config"
	"github.com/image-pin/image-pin-webhook/registries"
	"github.com/image-pin/image-pin-webhook/registries/credentials"
	"github.com/image-pin/image-pin-webhook/resolver"
	"github.com/image-pin/image-pin-webhook/test/cluster"
	"github.com/image-pin/image-pin-webhook/webhook"
)

var reg *cluster.Registry

func TestMain(m *testing.M) {
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		fmt.Fprintln(os.Stderr, "the fault matrix needs KUBEBUILDER_ASSETS (the registry binary): run `make e2e`")
		os.Exit(1)
	}
	dir, err := os.MkdirTemp("", "image-pin-faults-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	reg, err = cluster.StartRegistry(filepath.Join(assets, "registry"), filepath.Join(dir, "registry"), cluster.RegistryOptions{})
	if err == nil {
		_, err = reg.Push("bench/app:1")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	reg.Stop()
	os.RemoveAll(dir)
	os.Exit(code)
}

const (
	resolveTimeout = 2 * time.Second
	user, pass     = "fault-user", "fault-Pa55"
)

// proxy forwards to the registry unless fault answers first. It asks for
// Basic credentials, so credential faults can be played.
type proxy struct {
	*httptest.Server
	fault   func(w http.ResponseWriter, r *http.Request) bool
	forward *httputil.ReverseProxy
}

func newProxy(t *testing.T, tlsServer bool, fault func(w http.ResponseWriter, r *http.Request) bool) *proxy {
	u, _ := url.Parse(reg.URL)
	p := &proxy{fault: fault, forward: httputil.NewSingleHostReverseProxy(u)}
	p.forward.Transport = &http.Transport{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.fault != nil && p.fault(w, r) {
			return
		}
		if u, pw, ok := r.BasicAuth(); !ok || u != user || pw != pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="faults"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		p.forward.ServeHTTP(w, r)
	})
	if tlsServer {
		p.Server = httptest.NewTLSServer(h) // its CA is not in the config: unknown to the webhook
	} else {
		p.Server = httptest.NewServer(h)
	}
	t.Cleanup(func() {
		p.CloseClientConnections()
		p.Close()
		p.forward.Transport.(*http.Transport).CloseIdleConnections()
	})
	return p
}

// once wraps a fault so it answers only the first matching request.
func once(f func(w http.ResponseWriter, r *http.Request) bool) func(w http.ResponseWriter, r *http.Request) bool {
	var done atomic.Bool
	return func(w http.ResponseWriter, r *http.Request) bool {
		if done.Load() {
			return false
		}
		if f(w, r) {
			done.Store(true)
			return true
		}
		return false
	}
}

func onManifest(f func(w http.ResponseWriter, r *http.Request)) func(w http.ResponseWriter, r *http.Request) bool {
	return func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.Contains(r.URL.Path, "/manifests/") {
			return false
		}
		f(w, r)
		return true
	}
}

func status(code int, header ...string) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(code)
	}
}

func hijack(w http.ResponseWriter, write string) {
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	if write != "" {
		_, _ = buf.WriteString(write)
		_ = buf.Flush()
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // a reset, not a clean close
	}
	conn.Close()
}

// waitForClient holds a request until the client gives up.
func waitForClient(_ http.ResponseWriter, r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-time.After(30 * time.Second):
	}
}

// tenThousandTags serves a paginated listing of 10,000 semver tags, the
// newest of which is served by the real registry's tag 1.
func tenThousandTags(w http.ResponseWriter, r *http.Request) bool {
	if strings.HasSuffix(r.URL.Path, "/tags/list") {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		if n <= 0 {
			n = 100
		}
		start := 0
		if last := r.URL.Query().Get("last"); last != "" {
			fmt.Sscanf(r.URL.Query().Get("i"), "%d", &start)
		}
		var tags []string
		for i := start; i < start+n && i < 10000; i++ {
			tags = append(tags, fmt.Sprintf("%d.%d.0", i/100, i%100))
		}
		if start+n < 10000 {
			w.Header().Set("Link", fmt.Sprintf(`<%s?n=%d&last=%s&i=%d>; rel="next"`, r.URL.Path, n, tags[len(tags)-1], start+n))
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"name": "bench/app", "tags": tags})
		return true
	}
	if strings.HasSuffix(r.URL.Path, "/manifests/99.99.0") {
		r.URL.Path = strings.TrimSuffix(r.URL.Path, "99.99.0") + "1"
	}
	return false
}

func tokenThatHangs(p **proxy) func(w http.ResponseWriter, r *http.Request) bool {
	return func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/token" {
			waitForClient(w, r)
			return true
		}
		// The registry asks for a bearer token from an endpoint that never answers.
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s/token",service="faults"`, (*p).URL))
		w.WriteHeader(http.StatusUnauthorized)
		return true
	}
}

type outcome int

const (
	pinned outcome = iota // the fault passed (retried, re-authenticated, or not a failure)
	failed                // ignore: admitted unchanged with a warning; fail: denied
)

// Row names are the ones docs/reliability.md lists.
// faultRow is one fault: what the proxy does, or, when refused, that nothing
// listens at api_url at all.
type faultRow struct {
	name    string
	fault   func(p **proxy) func(w http.ResponseWriter, r *http.Request) bool
	tls     bool
	semver  bool
	refused bool
	want    outcome
}

func faultMatrix() []faultRow {
	f := func(fn func(w http.ResponseWriter, r *http.Request) bool) func(**proxy) func(w http.ResponseWriter, r *http.Request) bool {
		return func(**proxy) func(w http.ResponseWriter, r *http.Request) bool { return fn }
	}
	return []faultRow{
		{"connection refused", nil, false, false, true, failed},
		{"connection reset once mid-body", f(once(onManifest(func(w http.ResponseWriter, r *http.Request) {
			hijack(w, "HTTP/1.1 200 OK\r\nContent-Length: 900\r\n\r\n{\"sch")
		}))), false, false, false, pinned},
		{"connection reset on every request", f(onManifest(func(w http.ResponseWriter, r *http.Request) { hijack(w, "") })), false, false, false, failed},
		{"headers slower than the deadline", f(onManifest(waitForClient)), false, false, false, failed},
		{"429 with Retry-After, once", f(once(onManifest(status(429, "Retry-After", "1")))), false, false, false, pinned},
		{"429 without Retry-After, once", f(once(onManifest(status(429)))), false, false, false, pinned},
		{"429 with a Retry-After past the deadline", f(onManifest(status(429, "Retry-After", "60"))), false, false, false, failed},
		{"500 on every request", f(onManifest(status(500))), false, false, false, failed},
		{"502 on every request", f(onManifest(status(502))), false, false, false, failed},
		{"503 on every request", f(onManifest(status(503))), false, false, false, failed},
		{"503 once", f(once(onManifest(status(503)))), false, false, false, pinned},
		{"401 after the credential expires", f(once(onManifest(status(401, "WWW-Authenticate", `Basic realm="faults"`)))), false, false, false, pinned},
		{"403 on every request", f(onManifest(status(403))), false, false, false, failed},
		{"TLS with an unknown CA", nil, true, false, false, failed},
		{"a garbage manifest", f(onManifest(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
			if r.Method == http.MethodHead {
				w.Header().Set("Content-Length", "12")
				return
			}
			_, _ = w.Write([]byte("<html>oops</html>"))
		})), false, false, false, failed},
		{"a truncated manifest", f(onManifest(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodHead {
				w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
				w.Header().Set("Content-Length", "900")
				return
			}
			hijack(w, "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: 900\r\n\r\n{\"schemaVersion\": 2, \"conf")
		})), false, false, false, failed},
		{"a 10,000-tag listing", f(tenThousandTags), false, true, false, pinned},
		{"a token endpoint that hangs", tokenThatHangs, false, false, false, failed},
	}
}

// The rows run in parallel: each has its own proxy, config, credentials and
// resolver, and only the registry behind the proxies is shared. So the
// check that no goroutine is left behind covers the whole matrix, once every
// row and its cleanups are done (a leak's stack names the code that leaked;
// -run with one row attributes it).
func TestTheFaultMatrix(t *testing.T) {
	before := goleak.IgnoreCurrent()
	t.Run("rows", func(t *testing.T) {
		for _, row := range faultMatrix() {
			for _, onError := range []string{"ignore", "fail"} {
				t.Run(row.name+"/"+onError, func(t *testing.T) {
					t.Parallel()
					faultRowTest(t, row, onError)
				})
			}
		}
	})
	goleak.VerifyNone(t, before)
}

func faultRowTest(t *testing.T, row faultRow, onError string) {
	var p *proxy
	var fault func(w http.ResponseWriter, r *http.Request) bool
	if row.fault != nil {
		fault = row.fault(&p)
	}
	p = newProxy(t, row.tls, fault)
	apiURL := p.URL
	if row.refused {
		port, _ := cluster.FreePort()
		apiURL = fmt.Sprintf("http://127.0.0.1:%d", port)
	}
	doc := fmt.Sprintf("registries:\n- name: faulty\n  api_url: %s\n  prefix: bench.local\n  credentials: env:FAULT_CREDS\npolicy:\n  on_error: %s\n  resolve_timeout: %s\n",
		apiURL, onError, resolveTimeout)
	creds := credentials.New(credentials.WithEnvironment([]string{"FAULT_CREDS=" + user + ":" + pass}))
	cfg, err := config.Parse([]byte(doc), registries.WithCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer cfg.Registries.CloseIdleConnections()
	h := &admission.Webhook{Handler: webhook.NewHandler(func() *config.Config { return cfg }, resolver.New())}
	image, ann := "bench.local/bench/app:1", ""
	if row.semver {
		image, ann = "bench.local/bench/app", `,"annotations":{"image-pin.io/constraint":">=1"}`
	}
	body := fmt.Sprintf(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"f1","kind":{"group":"apps","version":"v1","kind":"Deployment"},"resource":{"group":"apps","version":"v1","resource":"deployments"},"operation":"CREATE","namespace":"team-a","object":{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"%s},"spec":{"selector":{"matchLabels":{"a":"b"}},"template":{"metadata":{"labels":{"a":"b"}},"spec":{"containers":[{"name":"app","image":"%s"}]}}}}}}`, ann, image)
	start := time.Now()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/mutate", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	h.ServeHTTP(rec, req)
	if took := time.Since(start); took > resolveTimeout+time.Second {
		t.Errorf("answered after %s; resolve_timeout is %s", took, resolveTimeout)
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &review); err != nil || review.Response == nil {
		t.Fatalf("not a well-formed AdmissionReview: %v %s", err, rec.Body)
	}
	r := review.Response
	gotPinned := bytes.Contains(r.Patch, []byte("@sha256:"))
	msg := strings.Join(r.Warnings, "\n")
	if r.Result != nil {
		msg += r.Result.Message
	}
	switch {
	case row.want == pinned:
		if !r.Allowed || !gotPinned {
			t.Fatalf("want pinned; allowed=%v pinned=%v message=%q", r.Allowed, gotPinned, msg)
		}
	case onError == "ignore":
		if !r.Allowed || gotPinned || !strings.Contains(msg, `container "app"`) || !strings.Contains(msg, image) {
			t.Fatalf("want admitted unchanged with a warning naming the container and image; allowed=%v pinned=%v message=%q", r.Allowed, gotPinned, msg)
		}
	default:
		if r.Allowed || !strings.Contains(msg, `container "app"`) || !strings.Contains(msg, image) {
			t.Fatalf("want denied naming the container and image; allowed=%v message=%q", r.Allowed, msg)
		}
	}
	if strings.Contains(msg, pass) {
		t.Fatal("the answer shows the password")
	}
	p.CloseClientConnections()
	cfg.Registries.CloseIdleConnections()
}
