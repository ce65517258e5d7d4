package credentials_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/image-pin/image-pin-webhook/registries/credentials"
	"github.com/image-pin/image-pin-webhook/registries/credentials/credtest"
)

func TestAPullSecretsIdentityIsItsNamespaceNamesAndResourceVersions(t *testing.T) {
	reader := fake.NewClientBuilder().WithObjects(
		credtest.PullSecret("team-a", "one", "r.example", "a"),
		credtest.PullSecret("team-a", "two", "r.example", "a"),
		credtest.PullSecret("team-b", "one", "r.example", "a"),
		credtest.ServiceAccount("team-a", "robot", "one"),
	).Build()
	c := credentials.New(credentials.WithSecretReader(reader))
	id := func(w credentials.Workload) string {
		t.Helper()
		p, err := c.ReadPullSecrets(ctx(t), w)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(p.String(), credtest.SecretValue) {
			t.Errorf("String prints a credential: %s", p)
		}
		return p.ID()
	}
	first := id(credentials.Workload{Namespace: "team-a", PullSecrets: []string{"one"}})
	if again := id(credentials.Workload{Namespace: "team-a", PullSecrets: []string{"one"}}); again != first {
		t.Errorf("the same Secret read twice gave two identities: %s, %s", first, again)
	}
	if sa := id(credentials.Workload{Namespace: "team-a", ServiceAccount: "robot"}); sa != first {
		t.Errorf("the ServiceAccount's Secret gave another identity than the object's: %s, %s", sa, first)
	}
	distinct := map[string]string{"team-a/one": first}
	for name, w := range map[string]credentials.Workload{
		"team-b/one":      {Namespace: "team-b", PullSecrets: []string{"one"}},
		"team-a/one,two":  {Namespace: "team-a", PullSecrets: []string{"one", "two"}},
		"team-a/two,one":  {Namespace: "team-a", PullSecrets: []string{"two", "one"}},
		"team-a/two":      {Namespace: "team-a", PullSecrets: []string{"two"}},
		"team-a/(robot)":  {Namespace: "team-a", ServiceAccount: "robot"},
		"team-a/one,one2": {Namespace: "team-a", PullSecrets: []string{"one", "one"}},
	} {
		got := id(w)
		if name == "team-a/(robot)" || name == "team-a/one,one2" {
			continue // the same Secret as team-a/one, checked above
		}
		for other, oid := range distinct {
			if oid == got {
				t.Errorf("%s and %s share the identity %s", name, other, got)
			}
		}
		distinct[name] = got
	}
	// A rotated Secret (a new resourceVersion) is a new identity.
	var s corev1.Secret
	if err := reader.Get(ctx(t), client.ObjectKey{Namespace: "team-a", Name: "one"}, &s); err != nil {
		t.Fatal(err)
	}
	s.Data[corev1.DockerConfigJsonKey] = []byte(`{"auths":{"r.example":{"auth":"` + credtest.B64("a:rotated") + `"}}}`)
	if err := reader.Update(ctx(t), &s); err != nil {
		t.Fatal(err)
	}
	if rotated := id(credentials.Workload{Namespace: "team-a", PullSecrets: []string{"one"}}); rotated == first {
		t.Errorf("the Secret changed (resourceVersion %s) but its identity did not", s.ResourceVersion)
	}
}

func TestPullSecretsComeFromTheObjectElseFromItsServiceAccountAsKubernetesDoes(t *testing.T) {
	reader := fake.NewClientBuilder().WithObjects(
		credtest.PullSecret("team-a", "own", "r.example", "own-user"),
		credtest.PullSecret("team-a", "sa", "r.example", "sa-user"),
		credtest.ServiceAccount("team-a", "default", "sa"),
		credtest.ServiceAccount("team-a", "robot"),
	).Build()
	c := credentials.New(credentials.WithSecretReader(reader))
	tests := []struct {
		name string
		w    credentials.Workload
		want string
	}{
		{"the object's own, even with a ServiceAccount that names others", credentials.Workload{Namespace: "team-a", PullSecrets: []string{"own"}}, "Secrets own"},
		{"the default ServiceAccount's when the object names none", credentials.Workload{Namespace: "team-a"}, "Secrets sa"},
		{"a ServiceAccount without any: anonymous", credentials.Workload{Namespace: "team-a", ServiceAccount: "robot"}, "no pull secrets"},
		{"the object's own need no ServiceAccount", credentials.Workload{Namespace: "team-a", ServiceAccount: "missing", PullSecrets: []string{"own"}}, "Secrets own"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := c.ReadPullSecrets(ctx(t), tc.w)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(p.String(), tc.want) {
				t.Errorf("%s, want %s…", p, tc.want)
			}
		})
	}
}

func TestAPullSecretThatCannotBeReadFailsNamingItNeverItsValue(t *testing.T) {
	notBase64 := credtest.Secret("team-a", "not-base64", credtest.DockerConfig(`"r.example":{"auth":"`+credtest.SecretValue+`!"}`))
	notJSON := credtest.Secret("team-a", "not-json", map[string]string{corev1.DockerConfigJsonKey: `{"auths":` + credtest.SecretValue})
	opaque := credtest.Secret("team-a", "opaque", map[string]string{"token": credtest.SecretValue})
	many := credtest.ServiceAccount("team-a", "many")
	for i := 0; i < 20; i++ {
		many.ImagePullSecrets = append(many.ImagePullSecrets, corev1.LocalObjectReference{Name: fmt.Sprintf("s%d", i)})
	}
	reader := fake.NewClientBuilder().WithObjects(notBase64, notJSON, opaque, many, credtest.ServiceAccount("team-a", "default", "gone")).Build()
	c := credentials.New(credentials.WithSecretReader(reader))
	tests := []struct {
		name string
		w    credentials.Workload
		want string
	}{
		{"a missing Secret", credentials.Workload{Namespace: "team-a", PullSecrets: []string{"missing"}}, "Secret team-a/missing (named by the object's imagePullSecrets)"},
		{"a missing Secret the ServiceAccount names", credentials.Workload{Namespace: "team-a"}, "Secret team-a/gone (named by ServiceAccount team-a/default)"},
		{"a missing ServiceAccount", credentials.Workload{Namespace: "team-a", ServiceAccount: "robot"}, "ServiceAccount team-a/robot"},
		{"an auth that is not base64", credentials.Workload{Namespace: "team-a", PullSecrets: []string{"not-base64"}}, "imagepullsecrets (Secret team-a/not-base64): the auth of \"r.example\" is not base64"},
		{"a config that is not JSON", credentials.Workload{Namespace: "team-a", PullSecrets: []string{"not-json"}}, "imagepullsecrets (Secret team-a/not-json): .dockerconfigjson is not valid JSON"},
		{"a Secret that is no docker config", credentials.Workload{Namespace: "team-a", PullSecrets: []string{"opaque"}}, "imagepullsecrets (Secret team-a/opaque): the secret has no .dockerconfigjson"},
		{"more Secrets than the bound", credentials.Workload{Namespace: "team-a", ServiceAccount: "many"}, "names 20 pull secrets, more than 16"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.ReadPullSecrets(ctx(t), tc.w)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to say %q", err, tc.want)
			}
			if strings.Contains(err.Error(), credtest.SecretValue) {
				t.Errorf("the error prints a credential: %v", err)
			}
		})
	}
}

func TestCredentialsAreTriedMostSpecificFirstThenSecretByOrderOnceEachAndNamedWithoutAValue(t *testing.T) {
	reader := fake.NewClientBuilder().WithObjects(
		credtest.PullSecret("team-a", "generic", "r.example", "generic"),
		credtest.PullSecret("team-a", "org", "r.example/org", "org"),
		credtest.PullSecret("team-a", "generic-too", "https://r.example/v2/", "generic-too"),
		credtest.PullSecret("team-a", "copy", "r.example", "generic"), // the same credential again
	).Build()
	p, err := credentials.New(credentials.WithSecretReader(reader)).ReadPullSecrets(ctx(t), credentials.Workload{Namespace: "team-a", PullSecrets: []string{"generic", "org", "generic-too", "copy"}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		host, repo string
		users      []string
		presented  string
	}{
		{"r.example", "org/app", []string{"org", "generic", "generic-too"},
			`presented, in turn, the auths entry "r.example/org" of Secret team-a/org, the auths entry "r.example" of Secret team-a/generic, the auths entry "https://r.example/v2/" of Secret team-a/generic-too`},
		{"r.example", "other/app", []string{"generic", "generic-too"},
			`presented, in turn, the auths entry "r.example" of Secret team-a/generic, the auths entry "https://r.example/v2/" of Secret team-a/generic-too`},
		{"elsewhere.example", "org/app", []string{""},
			"presented no credential: no auths entry of the pull secrets (team-a/generic, team-a/org, team-a/generic-too, team-a/copy) covers elsewhere.example/org/app"},
	}
	for _, tc := range tests {
		auths := p.Auths(tc.host, tc.repo)
		var users []string
		for _, a := range auths {
			users = append(users, a.Username)
		}
		if !slices.Equal(users, tc.users) {
			t.Errorf("%s/%s: tried as %q, want %q", tc.host, tc.repo, users, tc.users)
		}
		if got := p.Presented(tc.host, tc.repo); got != tc.presented || strings.Contains(got, credtest.SecretValue) {
			t.Errorf("%s/%s: presented\n %q, want\n %q", tc.host, tc.repo, got, tc.presented)
		}
	}
}

// manyAuths is a docker config with n auths entries for other hosts and
// one for r.example.
func manyAuths(n int) map[string]string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `"r%d.other.example":{"auth":%q},`, i, credtest.B64(fmt.Sprintf("u%d:%s", i, credtest.SecretValue)))
	}
	fmt.Fprintf(&b, `"r.example":{"auth":%q}`, credtest.B64("a:"+credtest.SecretValue))
	return credtest.DockerConfig(b.String())
}

func TestAPullSecretTooLargeToBeADockerConfigIsRefusedNamingIt(t *testing.T) {
	// Secrets may hold 1 MiB each, and an object may name 16: a tenant
	// must not make every admission hold and parse 16 MiB of JSON.
	huge := credtest.Secret("team-a", "huge", manyAuths(20000))
	reader := fake.NewClientBuilder().WithObjects(huge).Build()
	c := credentials.New(credentials.WithSecretReader(reader))
	_, err := c.ReadPullSecrets(ctx(t), credentials.Workload{Namespace: "team-a", PullSecrets: []string{"huge"}})
	if err == nil || !strings.Contains(err.Error(), "Secret team-a/huge") || !strings.Contains(err.Error(), "KiB") {
		t.Fatalf("err = %v, want a refusal naming the Secret and the bound", err)
	}
	if strings.Contains(err.Error(), credtest.SecretValue) {
		t.Errorf("the error prints a credential: %v", err)
	}
}

func TestTheCredentialsOfPullSecretsAreParsedOnceNotAtEveryRequest(t *testing.T) {
	// Every registry request of a lookup (newest-build: hundreds) asks for
	// the credentials: it must not parse the Secrets' JSON again each time.
	reader := fake.NewClientBuilder().WithObjects(credtest.Secret("team-a", "big", manyAuths(1000))).Build()
	c := credentials.New(credentials.WithSecretReader(reader))
	p, err := c.ReadPullSecrets(ctx(t), credentials.Workload{Namespace: "team-a", PullSecrets: []string{"big"}})
	if err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(20, func() {
		if a := p.Auths("r.example", "team-a/app"); a[0].Username != "a" {
			t.Fatalf("Auths = %v", a)
		}
	})
	if allocs > 50 {
		t.Errorf("Auths allocates %.0f times per call with 1,001 auths entries: it parses the Secrets again", allocs)
	}
}

func TestAnAuthsKeyWithAPasswordInItIsNeverPrinted(t *testing.T) {
	const pw = "key-Pa55-in-the-key"
	s := credtest.Secret("ci", "keyed", credtest.DockerConfig(`"https://u:`+pw+`@x.io":{"auth":"not base64!"}`))
	reader := fake.NewClientBuilder().WithObjects(s).Build()
	c := credentials.New(credentials.WithSecretReader(reader))
	_, err := c.Get(ctx(t), credtest.Source(t, "pullsecret:ci/keyed"), credentials.FetchOptions{Timeout: time.Second})
	if err == nil {
		t.Fatal("a malformed auth was accepted")
	}
	if strings.Contains(err.Error(), pw) {
		t.Errorf("the error prints the password written in the auths key: %q", err)
	}
}
