// Package credtest builds the credential sources, Secrets, ServiceAccounts
// and login scripts that the tests of registries and its credentials
// package feed the credential cache. It is for tests only.
package credtest

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/image-pin/image-pin-webhook/registries/credentials"
)

// SecretValue is the password every helper here writes: it must never
// appear in an error, warning, log line or metric.
const SecretValue = "s3cr3t-pa55"

// Source parses a credentials field, failing the test if it is refused.
func Source(t testing.TB, s string) credentials.Source {
	t.Helper()
	src, err := credentials.ParseSource(s)
	if err != nil {
		t.Fatal(err)
	}
	return *src
}

// Secret is a Secret in ns holding data.
func Secret(ns, name string, data map[string]string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: map[string][]byte{}}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	return s
}

// DockerConfig is the data of a dockerconfigjson Secret whose auths object
// holds auths (its members, without the braces).
func DockerConfig(auths string) map[string]string {
	return map[string]string{corev1.DockerConfigJsonKey: `{"auths":{` + auths + `}}`}
}

// B64 is s in standard base64, as a docker config's auth field.
func B64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// PullSecret is a dockerconfigjson Secret logging in to host as user, with
// a password made of SecretValue and user.
func PullSecret(ns, name, host, user string) *corev1.Secret {
	s := Secret(ns, name, DockerConfig(fmt.Sprintf(`%q:{"auth":%q}`, host, B64(user+":"+SecretValue+user))))
	s.Type = corev1.SecretTypeDockerConfigJson
	return s
}

// ServiceAccount is a ServiceAccount in ns listing secrets as its
// imagePullSecrets.
func ServiceAccount(ns, name string, secrets ...string) *corev1.ServiceAccount {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	for _, s := range secrets {
		sa.ImagePullSecrets = append(sa.ImagePullSecrets, corev1.LocalObjectReference{Name: s})
	}
	return sa
}

// Script writes an executable /bin/sh script with body and returns its path.
func Script(t testing.TB, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "login.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// CountingScript prints user:SecretValue after sleeping, and appends a line
// to a file per run; runs counts them.
func CountingScript(t testing.TB, sleep string) (path string, runs func() int) {
	t.Helper()
	log := filepath.Join(t.TempDir(), "runs")
	p := Script(t, fmt.Sprintf("echo run >> %s\nsleep %s\necho u:%s", log, sleep, SecretValue))
	return p, func() int {
		b, _ := os.ReadFile(log)
		return strings.Count(string(b), "run")
	}
}

// SeedECRScript is the ECR login script of the seed's registries guide (and
// Argo CD Image Updater's), byte for byte as its authScripts hold it.
const SeedECRScript = `#!/bin/sh
aws ecr --region "eu-west-1" get-authorization-token --output text --query 'authorizationData[].authorizationToken' | base64 -d
`

// SeedECRScriptFile writes SeedECRScript to an executable file.
func SeedECRScriptFile(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "login.sh")
	if err := os.WriteFile(p, []byte(SeedECRScript), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// StandInAWS makes a directory holding an aws command that answers the
// seed's get-authorization-token call as the AWS CLI does (the base64 of
// AWS:password, then a newline) and refuses any other call as the CLI
// refuses a wrong argument, and returns a PATH with it first, then the
// system's directories (which hold sh and base64, and no aws).
func StandInAWS(t testing.TB, password string) (path string) {
	t.Helper()
	dir := t.TempDir()
	token := B64("AWS:" + password)
	script := `#!/bin/sh
if [ "$*" != "ecr --region eu-west-1 get-authorization-token --output text --query authorizationData[].authorizationToken" ]; then
  echo "aws: error: unexpected arguments: $*" >&2
  exit 252
fi
echo ` + token + `
`
	if err := os.WriteFile(filepath.Join(dir, "aws"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir + ":" + SystemPath
}

// SystemPath holds sh and base64 and, on the machines tests run on, no
// aws; a PATH of it alone is the default image without the AWS CLI.
const SystemPath = "/usr/bin:/bin"
