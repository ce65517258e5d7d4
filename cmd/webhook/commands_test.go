package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"flag"
	"math/big"
	"strings"
	"testing"
	"time"
)

func TestTheCommandLineIsASubcommandTheVersionTheHelpOrServerFlags(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		code      int
		serve     bool
		stdout    []string
		stderr    []string
		notServed bool
	}{
		{name: "no arguments serve", args: nil, serve: true},
		{name: "flags serve", args: []string{"--config", "x"}, serve: true},
		{name: "a misspelt subcommand is an error with the usage, not a server", args: []string{"chek", "--config", "x"}, code: 2,
			stderr: []string{`unknown subcommand "chek"`, "check", "resolve", "doctor", "drift", "version", "help"}},
		{name: "version prints the version and the Go version", args: []string{"version"}, stdout: []string{"image-pin-webhook v9", "go1."}},
		{name: "--version does the same", args: []string{"--version"}, stdout: []string{"image-pin-webhook v9", "go1."}},
		{name: "help lists the subcommands and the server flags", args: []string{"help"},
			stdout: []string{"check", "resolve", "doctor", "drift", "version", "Server flags:", "-cert-secret", "-client-cert-name"}},
		{name: "--help does the same", args: []string{"--help"}, stdout: []string{"doctor", "Server flags:", "-config"}},
		{name: "a subcommand runs", args: []string{"check", "--config", "/nonexistent"}, code: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("image-pin-webhook", flag.ContinueOnError)
			newOptions().AddFlags(fs)
			var stdout, stderr bytes.Buffer
			code, serve := dispatch(context.Background(), tc.args, fs, "v9", &stdout, &stderr)
			if serve != tc.serve || (!serve && code != tc.code) {
				t.Fatalf("code %d serve %v, want %d %v\nstdout %s\nstderr %s", code, serve, tc.code, tc.serve, &stdout, &stderr)
			}
			for _, w := range tc.stdout {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, &stdout)
				}
			}
			for _, w := range tc.stderr {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, &stderr)
				}
			}
		})
	}
}

func TestAnArgumentAfterTheServerFlagsIsRefused(t *testing.T) {
	fs := flag.NewFlagSet("image-pin-webhook", flag.ContinueOnError)
	newOptions().AddFlags(fs)
	if err := fs.Parse([]string{"--config", "x", "chek"}); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	if code := checkPositional(fs, &stderr); code != 2 || !strings.Contains(stderr.String(), `unexpected argument "chek"`) {
		t.Errorf("exit %d: %s", code, &stderr)
	}
}

// issue signs a client certificate with CN cn and DNS SANs dns.
func issue(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, cn string, dns ...string) *x509.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn}, DNSNames: dns,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if ca == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid, tmpl.KeyUsage = true, true, x509.KeyUsageCertSign
		ca, caKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

func TestClientCertNameAdmitsTheAPIServersCertificateAndRefusesAKubeletsOfTheSameCA(t *testing.T) {
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cluster CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	ca, _ := x509.ParseCertificate(der)
	tests := []struct {
		name string
		cert *x509.Certificate
		ok   bool
	}{
		{"the API server's certificate with the name as CN passes", issue(t, ca, caKey, "kube-apiserver-webhook-client"), true},
		{"one with the name as a DNS SAN passes", issue(t, ca, caKey, "apiserver", "kube-apiserver-webhook-client"), true},
		{"a kubelet's certificate of the same CA is refused", issue(t, ca, caKey, "system:node:worker-1"), false},
		{"a name that only contains the wanted one is refused", issue(t, ca, caKey, "kube-apiserver-webhook-client-evil"), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := clientNamed(tls.ConnectionState{PeerCertificates: []*x509.Certificate{tc.cert}}, "kube-apiserver-webhook-client")
			if (err == nil) != tc.ok {
				t.Errorf("clientNamed: %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
