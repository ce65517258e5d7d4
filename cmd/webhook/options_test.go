package main

import (
	"crypto/tls"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// parse binds fresh options to a FlagSet of their own and parses args.
func parse(t *testing.T, args ...string) *options {
	t.Helper()
	o := newOptions()
	fs := flag.NewFlagSet("image-pin-webhook", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return o
}

func TestTheFlagsDefaultToWhatTheOperationsGuideSays(t *testing.T) {
	o := parse(t)
	got := map[string]any{
		"--config": o.ConfigPath, "--cert-dir": o.CertDir, "--port": o.Port,
		"--metrics-bind-address": o.MetricsAddr, "--health-probe-bind-address": o.ProbeAddr,
		"--shutdown-delay": o.ShutdownDelay, "--enable-http2": o.EnableHTTP2, "--client-ca-file": o.ClientCAFile,
	}
	want := map[string]any{
		"--config": "/etc/image-pin-webhook/config.yaml", "--cert-dir": "/tmp/k8s-webhook-server/serving-certs", "--port": 9443,
		"--metrics-bind-address": ":8080", "--health-probe-bind-address": ":8081",
		"--shutdown-delay": 5 * time.Second, "--enable-http2": false, "--client-ca-file": "",
	}
	for flag, w := range want {
		if got[flag] != w {
			t.Errorf("%s defaults to %v, want %v", flag, got[flag], w)
		}
	}
	if err := o.Validate(); err != nil {
		t.Errorf("the defaults are invalid: %v", err)
	}
}

func TestFlagsBindToTheirOptions(t *testing.T) {
	o := parse(t, "--config", "/c.yaml", "--cert-dir", "/certs", "--port", "10250",
		"--metrics-bind-address", "0", "--health-probe-bind-address", "127.0.0.1:9000",
		"--shutdown-delay", "1s", "--enable-http2", "--client-ca-file", "/ca.pem", "--zap-log-level", "debug")
	if o.ConfigPath != "/c.yaml" || o.CertDir != "/certs" || o.Port != 10250 || o.MetricsAddr != "0" ||
		o.ProbeAddr != "127.0.0.1:9000" || o.ShutdownDelay != time.Second || !o.EnableHTTP2 || o.ClientCAFile != "/ca.pem" ||
		o.Logging.Level == nil {
		t.Errorf("options after parsing: %+v", o)
	}
	if err := o.Validate(); err != nil {
		t.Error(err)
	}
}

func TestBadFlagValuesAreRefusedNamingTheFlag(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"a port of 0 is refused rather than quietly served on 9443", []string{"--port", "0"}, "--port: 0"},
		{"a port above 65535 is refused", []string{"--port", "70000"}, "--port: 70000"},
		{"a negative shutdown delay is refused", []string{"--shutdown-delay", "-1s"}, "--shutdown-delay: -1s"},
		{"an empty config path is refused", []string{"--config", ""}, "--config: must be set"},
		{"an empty cert dir is refused", []string{"--cert-dir", ""}, "--cert-dir: must be set"},
		{"a client cert name without a client CA is refused", []string{"--client-cert-name", "apiserver"}, "--client-cert-name: needs --client-ca-file"},
		{"a cert secret that is no name is refused", []string{"--cert-secret", "Bad_Name"}, `--cert-secret: "Bad_Name"`},
		{"with a cert secret, a bad webhook config name is refused", []string{"--cert-secret", "tls", "--webhook-config-name", ""}, `--webhook-config-name: ""`},
		{"with a cert secret, a bad DNS name is refused", []string{"--cert-secret", "tls", "--cert-dns-name", "a b"}, `--cert-dns-name: "a b"`},
		{"a metrics address without a port is refused", []string{"--metrics-bind-address", "localhost"}, `--metrics-bind-address: "localhost"`},
		{"a probe address with a bad port is refused", []string{"--health-probe-bind-address", ":http2"}, `--health-probe-bind-address: ":http2"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := parse(t, tc.args...).Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestZeroTurnsMetricsAndProbesOff(t *testing.T) {
	if err := parse(t, "--metrics-bind-address", "0", "--health-probe-bind-address", "0").Validate(); err != nil {
		t.Error(err)
	}
}

func TestAClientCAFileThatCannotBeUsedIsAnErrorNamingTheFlag(t *testing.T) {
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, path := range map[string]string{"a missing file": filepath.Join(t.TempDir(), "absent.pem"), "a file without PEM": notPEM} {
		t.Run(name, func(t *testing.T) {
			_, err := parse(t, "--client-ca-file", path).admissionTLS()
			if err == nil || !strings.Contains(err.Error(), "--client-ca-file") {
				t.Errorf("err = %v, want one naming --client-ca-file", err)
			}
		})
	}
}

func TestHTTP2IsOffUnlessAsked(t *testing.T) {
	for _, tc := range []struct {
		args      []string
		wantHTTP2 bool
	}{{nil, false}, {[]string{"--enable-http2"}, true}} {
		opts, err := parse(t, tc.args...).admissionTLS()
		if err != nil {
			t.Fatal(err)
		}
		c := &tls.Config{}
		for _, o := range opts {
			o(c)
		}
		if http1Only := len(c.NextProtos) == 1 && c.NextProtos[0] == "http/1.1"; http1Only == tc.wantHTTP2 {
			t.Errorf("%v: NextProtos %v", tc.args, c.NextProtos)
		}
	}
}

func TestTheCertificateFlagsDefaultToTheChartsNamesInThePodsNamespace(t *testing.T) {
	t.Setenv("POD_NAMESPACE", "pins")
	o := parse(t)
	if o.CertSecret != "" || o.WebhookConfigName != "image-pin-webhook" || o.CertDNSName != "image-pin-webhook.pins.svc" || o.StateNamespace != "pins" {
		t.Errorf("defaults: secret %q config %q dns %q namespace %q", o.CertSecret, o.WebhookConfigName, o.CertDNSName, o.StateNamespace)
	}
	t.Setenv("POD_NAMESPACE", "")
	if o := parse(t); o.StateNamespace != "image-pin-system" || o.CertDNSName != "image-pin-webhook.image-pin-system.svc" {
		t.Errorf("without POD_NAMESPACE: namespace %q dns %q", o.StateNamespace, o.CertDNSName)
	}
	if err := parse(t, "--cert-secret", "image-pin-webhook-tls").Validate(); err != nil {
		t.Errorf("--cert-secret with the defaults: %v", err)
	}
}
