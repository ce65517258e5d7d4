package config_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/image-pin/image-pin-webhook/config"
)

func caPEM(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, IsCA: true,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// A reload can fail for a reason outside the file, such as a ca_file whose
// Secret is not mounted yet: it is tried again with backoff, without waiting
// for the file to change.
func TestAReloadThatFailedOutsideTheFileIsRetried(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	writeFile(t, path, "policy:\n  mode: pin\n")
	reg := prometheus.NewRegistry()
	w, changed := startWatcher(t, path,
		config.WithPollInterval(time.Hour),
		config.WithRetryBackoff(50*time.Millisecond, time.Second),
		config.WithReloadMetrics(reg))

	ca := filepath.Join(t.TempDir(), "ca.pem") // outside the watched directory
	writeFile(t, path, "registries:\n- name: r1\n  api_url: https://r1.example\n  prefix: r1.example\n  ca_file: "+ca+"\n")
	// The reload fails (no ca_file yet), and is counted.
	for deadline := time.Now().Add(30 * time.Second); reloadFailures(t, reg) == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the reload with a missing ca_file was never counted as failed")
		}
	}
	if len(w.Current().Registries.Entries()) != 0 {
		t.Fatal("a config with a missing ca_file took effect")
	}
	writeFile(t, ca, caPEM(t)) // the Secret is mounted; the config file is unchanged
	select {
	case <-changed:
		if n := len(w.Current().Registries.Entries()); n != 1 {
			t.Errorf("%d registries in force, want 1", n)
		}
	case <-time.After(30 * time.Second): // generous: the retry is due within a second
		t.Fatal("the reload was not tried again")
	}
}

// reloadFailures is image_pin_config_reloads_total{result="failure"}.
func reloadFailures(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "image_pin_config_reloads_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == "failure" {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
