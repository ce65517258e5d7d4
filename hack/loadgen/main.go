// Command loadgen measures the built webhook binary from outside: it starts
// a distribution registry behind a counting proxy and the webhook, posts real
// AdmissionReviews over HTTPS with keep-alive from N concurrent clients, and
// prints admissions/s, latency percentiles, registry requests per 1,000
// admissions and the webhook's resident memory. `make bench` runs it.
package main

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/image-pin/image-pin-webhook/test/cluster"
)

func main() {
	quick := flag.Bool("quick", false, "fewer admissions per workload, for a smoke run")
	soak := flag.Int("soak", 0, "instead of the benchmarks, post this many admissions while the registry flaps between up and down")
	stateOnly := flag.Bool("state-only", false, "run only the --state memory against --state cluster comparison (on a real API server with the CRD)")
	stateContainers := intList{1, 5, 20}
	flag.Var(&stateContainers, "state-containers", "containers per Deployment in the --state comparison, comma-separated")
	flag.Parse()
	if err := run(*quick, *soak, *stateOnly, stateContainers); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

type env struct {
	dir, bin, certDir, kubeconfig string
	reg                           *cluster.Registry
	proxy                         *countingProxy
	proxyURL                      string
	authority                     *cluster.CA
}

func run(quick bool, soak int, stateOnly bool, stateContainers []int) error {
	assets, bin := os.Getenv("KUBEBUILDER_ASSETS"), os.Getenv("IMAGE_PIN_WEBHOOK_BIN")
	if assets == "" || bin == "" {
		return fmt.Errorf("run it with `make bench`, which sets KUBEBUILDER_ASSETS and IMAGE_PIN_WEBHOOK_BIN")
	}
	dir, err := os.MkdirTemp("", "image-pin-loadgen-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	e := &env{dir: dir, bin: bin}
	if e.authority, err = cluster.NewCA(); err != nil {
		return err
	}
	e.certDir = filepath.Join(dir, "certs")
	if err := e.authority.Issue(e.certDir); err != nil {
		return err
	}
	// The webhook needs a kubeconfig; no Secret is read here, so an API server
	// that does not answer is enough (and shows it is not needed).
	e.kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(e.kubeconfig, []byte(cluster.UnreachableKubeconfig), 0o600); err != nil {
		return err
	}
	if e.reg, err = cluster.StartRegistry(filepath.Join(assets, "registry"), filepath.Join(dir, "registry"), cluster.RegistryOptions{}); err != nil {
		return err
	}
	defer e.reg.Stop()
	if e.proxyURL, e.proxy, err = startProxy(e.reg.URL); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "pushing sample images")
	for i := range 20 {
		if _, err := e.reg.Push(fmt.Sprintf("bench/app%d:1", i)); err != nil {
			return err
		}
	}
	if soak > 0 {
		return e.soak(soak)
	}
	host, _ := os.Hostname()
	fmt.Printf("# image-pin-webhook load test\n\nmachine: %s, %d CPUs (%s), %s; webhook and load generator share the machine\n\n", host, numCPU(), cpuModel(), time.Now().UTC().Format("2006-01-02"))

	n := func(full, small int) int {
		if quick {
			return small
		}
		return full
	}
	if stateOnly {
		return e.stateCompare(n(10000, 1000), stateContainers)
	}
	fmt.Println("| workload | cache_ttl | clients | admissions | admissions/s | p50 | p90 | p99 | registry requests / 1,000 admissions |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	for _, ttl := range []string{"5m", "0"} {
		for _, containers := range []int{1, 5, 20} {
			for _, clients := range []int{50, 8} {
				count := n(10000, 1000)
				if ttl == "0" {
					count = n(2000, 300)
				}
				if err := e.workload(fmt.Sprintf("Deployment, %d containers, %s", containers, map[string]string{"5m": "warm", "0": "no cache"}[ttl]), ttl, containers, clients, count, ttl != "0"); err != nil {
					return err
				}
			}
		}
	}
	if err := e.workload("same 5 images, starting cold", "5m", 5, 50, 1000, false); err != nil {
		return err
	}
	fmt.Println()
	if err := e.coldLatency(); err != nil {
		return err
	}
	if err := e.memory(n(10000, 1000)); err != nil {
		return err
	}
	fmt.Println()
	return e.stateCompare(n(10000, 1000), stateContainers)
}

type webhookProc struct {
	*cluster.Webhook
	http *http.Client
}

// launch says how a workload's webhook runs; the zero kubeconfig is
// e.kubeconfig (an API server that does not answer).
type launch struct {
	ttl        string
	clients    int
	kubeconfig string
	args       []string
	metrics    bool
}

func (e *env) startWebhook(cacheTTL string, clients int) (*webhookProc, error) {
	return e.start(launch{ttl: cacheTTL, clients: clients})
}

func (e *env) start(l launch) (*webhookProc, error) {
	cacheTTL, clients, kubeconfig := l.ttl, l.clients, l.kubeconfig
	if kubeconfig == "" {
		kubeconfig = e.kubeconfig
	}
	cfg := filepath.Join(e.dir, "config.yaml")
	doc := fmt.Sprintf("registries:\n- name: bench\n  api_url: %s\n  prefix: bench.local\n  limit: 100000\npolicy:\n  cache_ttl: %s\n", e.proxyURL, cacheTTL)
	if err := os.WriteFile(cfg, []byte(doc), 0o644); err != nil {
		return nil, err
	}
	log, err := os.Create(filepath.Join(e.dir, "webhook.log"))
	if err != nil {
		return nil, err
	}
	w, err := cluster.StartWebhook(cluster.WebhookOptions{Binary: e.bin, Config: cfg, CertDir: e.certDir, Kubeconfig: kubeconfig, Metrics: l.metrics,
		Args: append([]string{"--shutdown-delay", "0s"}, l.args...), Env: []string{"GOMAXPROCS=2"}, Output: log})
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.authority.Pool()}, MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
	return &webhookProc{Webhook: w, http: &http.Client{Transport: tr, Timeout: 15 * time.Second}}, nil
}

func (w *webhookProc) stop() { w.Stop(time.Minute) }

func (w *webhookProc) rssKiB() int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", w.Cmd.Process.Pid))
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			var kib int
			fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(line, "VmRSS:")), "%d", &kib)
			return kib
		}
	}
	return 0
}

// review is an AdmissionReview of a Deployment with the given images.
func review(uid int, images []string) []byte {
	var ctrs []map[string]string
	for i, img := range images {
		ctrs = append(ctrs, map[string]string{"name": fmt.Sprintf("c%d", i), "image": img})
	}
	obj := map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": map[string]any{"name": "bench", "namespace": "team-a"},
		"spec": map[string]any{"selector": map[string]any{"matchLabels": map[string]string{"app": "b"}},
			"template": map[string]any{"metadata": map[string]any{"labels": map[string]string{"app": "b"}}, "spec": map[string]any{"containers": ctrs}}}}
	b, _ := json.Marshal(map[string]any{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": map[string]any{
		"uid": fmt.Sprintf("00000000-0000-0000-0000-%012d", uid), "kind": map[string]string{"group": "apps", "version": "v1", "kind": "Deployment"},
		"resource": map[string]string{"group": "apps", "version": "v1", "resource": "deployments"}, "namespace": "team-a", "name": "bench",
		"operation": "CREATE", "object": obj}})
	return b
}

func images(n int) []string {
	out := make([]string, n)
	for i := range n {
		out[i] = fmt.Sprintf("bench.local/bench/app%d:1", i)
	}
	return out
}

// post sends one admission and checks the answer is a patch.
func (w *webhookProc) post(body []byte) error {
	b, err := w.send(body)
	if err != nil {
		return err
	}
	if !bytes.Contains(b, []byte(`"allowed":true`)) || !bytes.Contains(b, []byte(`"patch"`)) {
		return fmt.Errorf("not pinned: %s", b)
	}
	return nil
}

// send posts one admission and returns the response body.
func (w *webhookProc) send(body []byte) ([]byte, error) {
	resp, err := w.http.Post(w.URL(), "application/json", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

// workload runs count admissions from clients goroutines and prints a row.
func (e *env) workload(name, ttl string, containers, clients, count int, warm bool) error {
	w, err := e.startWebhook(ttl, clients)
	if err != nil {
		return err
	}
	defer w.stop()
	st, err := e.measure(w, containers, clients, count, warm)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	fmt.Printf("| %s | %s | %d | %d | %.0f | %s | %s | %s | %.1f |\n", name, ttl, clients, count, st.rate,
		st.pct(0.5), st.pct(0.9), st.pct(0.99), float64(st.registry)*1000/float64(count))
	return nil
}

// stats are one workload's results.
type stats struct {
	lat      []time.Duration // sorted
	rate     float64         // admissions/s
	registry int64           // requests that reached the registry
}

func (s stats) pct(p float64) string { return fmtDur(s.lat[int(float64(len(s.lat)-1)*p)]) }

// measure posts count admissions of a Deployment with containers images
// from clients goroutines to w (after one admission first when warm).
func (e *env) measure(w *webhookProc, containers, clients, count int, warm bool) (stats, error) {
	body := review(1, images(containers))
	if warm {
		if err := w.post(body); err != nil {
			return stats{}, err
		}
	}
	e.proxy.reset()
	lat := make([]time.Duration, count)
	var next atomic.Int64
	var failures atomic.Int64
	var firstErr atomic.Value
	start := time.Now()
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(count) {
					return
				}
				t0 := time.Now()
				if err := w.post(body); err != nil {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if f := failures.Load(); f > 0 {
		return stats{}, fmt.Errorf("%d of %d admissions failed: %v", f, count, firstErr.Load())
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return stats{lat: lat, rate: float64(count) / elapsed.Seconds(), registry: e.proxy.total()}, nil
}

// coldLatency compares one cold admission (cache off, one image) with the
// registry round trip it needs, measured from here.
func (e *env) coldLatency() error {
	w, err := e.startWebhook("0", 1)
	if err != nil {
		return err
	}
	defer w.stop()
	body := review(1, images(1))
	_ = w.post(body) // connections and transport warm, as in a running webhook
	// The same request the webhook sends, through the same proxy, on a kept-alive connection.
	head, _ := http.NewRequest(http.MethodHead, e.proxyURL+"/v2/bench/app0/manifests/1", nil)
	head.Header.Set("Accept", "application/vnd.oci.image.index.v1+json,application/vnd.docker.distribution.manifest.list.v2+json,application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json")
	client := &http.Client{Transport: &http.Transport{}}
	var adm, rtt []time.Duration
	for range 200 {
		t0 := time.Now()
		if err := w.post(body); err != nil {
			return err
		}
		adm = append(adm, time.Since(t0))
		t1 := time.Now()
		resp, err := client.Do(head)
		if err != nil {
			return err
		}
		resp.Body.Close()
		rtt = append(rtt, time.Since(t1))
	}
	sort.Slice(adm, func(i, j int) bool { return adm[i] < adm[j] })
	sort.Slice(rtt, func(i, j int) bool { return rtt[i] < rtt[j] })
	fmt.Printf("cold admission (cache_ttl 0, 1 image, sequential): median %s; one manifest HEAD from the load generator: median %s; overhead %s\n\n",
		fmtDur(adm[100]), fmtDur(rtt[100]), fmtDur(adm[100]-rtt[100]))
	return nil
}

// memory fills the cache with distinct tags and reads the webhook's RSS.
func (e *env) memory(tags int) error {
	fmt.Fprintf(os.Stderr, "tagging %d images\n", tags)
	desc, err := e.reg.Get("bench/app0:1")
	if err != nil {
		return err
	}
	for i := range tags {
		if err := e.reg.PutManifest(fmt.Sprintf("bench/app0:t%d", i), desc); err != nil {
			return err
		}
	}
	w, err := e.startWebhook("1h", 8)
	if err != nil {
		return err
	}
	defer w.stop()
	before := w.rssKiB()
	var wg sync.WaitGroup
	var next atomic.Int64
	var firstErr atomic.Value
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(5) - 5)
				if i >= tags {
					return
				}
				var imgs []string
				for j := i; j < i+5 && j < tags; j++ {
					imgs = append(imgs, fmt.Sprintf("bench.local/bench/app0:t%d", j))
				}
				if err := w.post(review(i, imgs)); err != nil {
					firstErr.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	wg.Wait()
	if err := firstErr.Load(); err != nil {
		return err.(error)
	}
	fmt.Printf("resident memory: %.1f MiB at start, %.1f MiB with %d tags cached\n", float64(before)/1024, float64(w.rssKiB())/1024, tags)
	return nil
}

func fmtDur(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	default:
		return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000)
	}
}

// countingProxy counts the requests that reach the registry; while down it
// answers 503 without passing them on.
type countingProxy struct {
	n    atomic.Int64
	down atomic.Bool
}

func (p *countingProxy) reset()       { p.n.Store(0) }
func (p *countingProxy) total() int64 { return p.n.Load() }

func startProxy(target string) (string, *countingProxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return "", nil, err
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = &http.Transport{MaxIdleConnsPerHost: 64}
	p := &countingProxy{}
	port, err := cluster.FreePort()
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Addr: fmt.Sprintf("127.0.0.1:%d", port), ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p.n.Add(1)
			if p.down.Load() {
				http.Error(w, "registry down", http.StatusServiceUnavailable)
				return
			}
			rp.ServeHTTP(w, r)
		})}
	go func() { _ = srv.ListenAndServe() }()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/v2/", port)); err == nil {
			resp.Body.Close()
			return fmt.Sprintf("http://127.0.0.1:%d", port), p, nil
		}
	}
	return "", nil, fmt.Errorf("proxy did not start")
}

func numCPU() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "processor\t:")
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "model name") {
			return strings.TrimSpace(strings.SplitN(line, ":", 2)[1])
		}
	}
	return "unknown CPU"
}

// soak posts count admissions of 5 images from 50 clients while the
// registry flaps every 250ms, with cache_ttl 1s so the last known good
// digests carry the admissions through the outages.
func (e *env) soak(count int) error {
	w, err := e.startWebhook("1s", 50)
	if err != nil {
		return err
	}
	defer w.stop()
	imgs := images(5)
	body := review(1, imgs)
	first, err := w.postRaw(body)
	if err != nil {
		return err
	}
	digests := regexp.MustCompile(`sha256:[0-9a-f]{64}`).FindAllString(first, -1)
	if len(digests) != 5 {
		return fmt.Errorf("the first admission pinned %d images, want 5", len(digests))
	}
	stop := make(chan struct{})
	var flaps atomic.Int64
	go func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				e.proxy.down.Store(false)
				return
			case <-t.C:
				e.proxy.down.Store(!e.proxy.down.Load())
				flaps.Add(1)
			}
		}
	}()
	rssStart := w.rssKiB()
	var next, pinnedSame, unpinned, other, failures, denied atomic.Int64
	var maxRSS atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(count) {
					return
				}
				out, err := w.postRaw(body)
				switch {
				case err != nil:
					failures.Add(1)
				case !strings.Contains(out, `"allowed":true`):
					denied.Add(1)
				case !strings.Contains(out, `"patch"`):
					unpinned.Add(1)
				default:
					got := regexp.MustCompile(`sha256:[0-9a-f]{64}`).FindAllString(out, -1)
					if strings.Join(got, ",") == strings.Join(digests, ",") {
						pinnedSame.Add(1)
					} else {
						other.Add(1)
					}
				}
				if i%1000 == 0 {
					if r := int64(w.rssKiB()); r > maxRSS.Load() {
						maxRSS.Store(r)
					}
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	elapsed := time.Since(start)
	fmt.Printf("soak: %d admissions in %s (%.0f/s) over HTTPS from 50 clients while the registry flapped %d times (250ms up, 250ms down), cache_ttl 1s, on_error ignore\n",
		count, elapsed.Round(time.Millisecond), float64(count)/elapsed.Seconds(), flaps.Load())
	fmt.Printf("  pinned to the first digests: %d; pinned to other digests: %d; admitted unpinned: %d; denied: %d; transport errors: %d\n",
		pinnedSame.Load(), other.Load(), unpinned.Load(), denied.Load(), failures.Load())
	fmt.Printf("  registry requests: %d; resident memory: %.1f MiB at start, %.1f MiB at most during the run\n",
		e.proxy.total(), float64(rssStart)/1024, float64(maxRSS.Load())/1024)
	if w.Cmd.ProcessState != nil {
		return fmt.Errorf("the webhook exited during the soak")
	}
	if failures.Load() > 0 || denied.Load() > 0 || other.Load() > 0 || unpinned.Load() > 0 {
		return fmt.Errorf("the soak saw outcomes the policy does not allow")
	}
	return nil
}

// postRaw sends one admission and returns the response body with its
// patch decoded (it is base64 in the AdmissionReview).
func (w *webhookProc) postRaw(body []byte) (string, error) {
	b, err := w.send(body)
	if err != nil {
		return "", err
	}
	var rev struct {
		Response struct {
			Patch []byte `json:"patch"`
		} `json:"response"`
	}
	if err := json.Unmarshal(b, &rev); err != nil {
		return "", err
	}
	return string(b) + string(rev.Response.Patch), nil
}
