package registries_test

import (
	"context"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/image-pin/image-pin-webhook/config"
	"github.com/image-pin/image-pin-webhook/registries"
	"github.com/image-pin/image-pin-webhook/registries/client"
	"github.com/image-pin/image-pin-webhook/registries/credentials"
	"github.com/image-pin/image-pin-webhook/registries/imageref"
	"github.com/image-pin/image-pin-webhook/test/registrytest"
)

func TestTLSSettingsOfAnEntryDecideWhomItTrusts(t *testing.T) {
	srv := registrytest.New(t, registrytest.WithTLS())
	srv.PushImage(t, "app:1")
	caPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, []byte(caPEM), 0o644); err != nil {
		t.Fatal(err)
	}
	indent := "    " + strings.ReplaceAll(strings.TrimSpace(caPEM), "\n", "\n    ")
	tests := []struct {
		name, extra string
		ok          bool
	}{
		{"an unknown CA is refused", "", false},
		{"insecure: true skips verification", "  insecure: true\n", true},
		{"ca_file adds the CA", "  ca_file: " + caFile + "\n", true},
		{"ca_data adds the CA", "  ca_data: |\n" + indent + "\n", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc := fmt.Sprintf("registries:\n- name: tls\n  api_url: %s\n  prefix: %s\n%s", srv.URL, srv.Host, tc.extra)
			cfg, err := config.Parse([]byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			img, _ := imageref.ParseImage(srv.Host + "/app:1")
			tgt, _ := cfg.Registries.Match(img, "default")
			repo, _ := tgt.Client.Repository(tgt.Repository)
			err = tgt.Do(ctx(t), repo, func(rt http.RoundTripper) error {
				_, err := remote.Head(repo.Tag("1"), remote.WithTransport(rt))
				return err
			})
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestAPingMarksTheRegistryUpOrDown(t *testing.T) {
	srv := registrytest.New(t, registrytest.WithBasic("u", "p"))
	reg := prometheus.NewRegistry()
	m := client.NewMetrics(reg)
	doc := fmt.Sprintf("registries:\n- name: good\n  api_url: %s\n  prefix: %s/good\n  ping: yes\n  credentials: env:GOOD\n- name: bad\n  api_url: %s\n  prefix: %s/bad\n  ping: yes\n  credentials: env:BAD\n- name: quiet\n  api_url: %s\n  prefix: %s/quiet\n",
		srv.URL, srv.Host, srv.URL, srv.Host, srv.URL, srv.Host)
	creds := credentials.New(credentials.WithEnvironment([]string{"GOOD=u:p", "BAD=u:wrong"}))
	cfg, err := config.Parse([]byte(doc), registries.WithCredentials(creds), registries.WithMetrics(m))
	if err != nil {
		t.Fatal(err)
	}
	p := &registries.Pinger{Source: &pingSource{current: cfg.Registries}, Interval: time.Hour}
	c, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = p.Start(c); close(done) }()
	defer func() { cancel(); <-done }()
	want := `
# HELP image_pin_registry_up 1 when the last ping of the registry (GET /v2/ with its credentials) succeeded, else 0.
# TYPE image_pin_registry_up gauge
image_pin_registry_up{registry="bad"} 0
image_pin_registry_up{registry="good"} 1
`
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := testutil.GatherAndCompare(reg, strings.NewReader(want), "image_pin_registry_up")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestTheRateLimitCoversTokenRequestsToo(t *testing.T) {
	srv := registrytest.New(t, registrytest.WithBearer("u", "p"))
	srv.PushImage(t, "app:1")
	doc := fmt.Sprintf("registries:\n- name: slow\n  api_url: %s\n  prefix: %s\n  limit: 1\n  credentials: env:CREDS\n", srv.URL, srv.Host)
	cfg, err := config.Parse([]byte(doc), registries.WithCredentials(credentials.New(credentials.WithEnvironment([]string{"CREDS=u:p"}))))
	if err != nil {
		t.Fatal(err)
	}
	img, _ := imageref.ParseImage(srv.Host + "/app:1")
	tgt, _ := cfg.Registries.Match(img, "default")
	repo, _ := tgt.Client.Repository(tgt.Repository)
	srv.Reset()
	// One request a second: the ping passes, the token request must wait a
	// second, which a 300ms deadline does not allow.
	c, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err = tgt.Do(c, repo, func(rt http.RoundTripper) error {
		_, err := remote.Head(repo.Tag("1"), remote.WithTransport(rt), remote.WithContext(c))
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "rate limit") {
		t.Fatalf("err = %v, want the rate limit to stop the token request", err)
	}
	if got := srv.Received(); len(got) != 1 || !strings.HasPrefix(got[0], "GET /v2/") {
		t.Errorf("the registry saw %v, want only the ping", got)
	}
}
