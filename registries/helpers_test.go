package registries_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/image-pin/image-pin-webhook/registries/credentials"
)

// The helpers below are also in package credentials' tests, which test the
// credential cache on its own; these tests go through a Set.

const secretValue = "s3cr3t-pa55" // must never appear in an error

func source(t *testing.T, s string) credentials.Source {
	t.Helper()
	src, err := credentials.ParseSource(s)
	if err != nil {
		t.Fatal(err)
	}
	return *src
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func secret(ns, name string, data map[string]string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: map[string][]byte{}}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	return s
}

func dockerConfig(auths string) map[string]string {
	return map[string]string{corev1.DockerConfigJsonKey: `{"auths":{` + auths + `}}`}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// script writes an executable /bin/sh script with body and returns its path.
func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "login.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// countingScript prints user:pass after sleeping, and appends a line to a
// file per run.
func countingScript(t *testing.T, sleep string) (path string, runs func() int) {
	t.Helper()
	log := filepath.Join(t.TempDir(), "runs")
	p := script(t, fmt.Sprintf("echo run >> %s\nsleep %s\necho u:%s", log, sleep, secretValue))
	return p, func() int {
		b, _ := os.ReadFile(log)
		return strings.Count(string(b), "run")
	}
}
