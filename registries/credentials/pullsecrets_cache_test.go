package credentials_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/image-pin/image-pin-webhook/registries/credentials"
	"github.com/image-pin/image-pin-webhook/registries/credentials/credtest"
)

// getCounts counts the reads of Secrets, whole and metadata-only.
type getCounts struct {
	mu          sync.Mutex
	whole, meta int
}

func countingReader(t testing.TB, objs ...client.Object) (client.WithWatch, *getCounts) {
	t.Helper()
	n := &getCounts{}
	c := fake.NewClientBuilder().WithObjects(objs...).WithInterceptorFuncs(interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			n.mu.Lock()
			switch obj.(type) {
			case *corev1.Secret:
				n.whole++
			case *metav1.PartialObjectMetadata:
				n.meta++
			}
			n.mu.Unlock()
			return c.Get(ctx, key, obj, opts...)
		},
	}).Build()
	return c, n
}

func (n *getCounts) get() (whole, meta int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.whole, n.meta
}

// A pull Secret is read whole and decoded once per resourceVersion, however
// many admissions present it: each admission reads only its metadata to
// learn whether it changed. A changed Secret is read whole again.
func TestAPullSecretIsReadWholeOncePerResourceVersionAcrossAdmissions(t *testing.T) {
	secret := credtest.PullSecret("team-a", "regcred", "ghcr.io", "robot")
	reader, n := countingReader(t, secret)
	c := credentials.New(credentials.WithSecretReader(reader))
	w := credentials.Workload{Namespace: "team-a", PullSecrets: []string{"regcred"}}
	var first string
	for i := range 20 {
		p, err := c.ReadPullSecrets(ctx(t), w)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = p.ID()
		} else if p.ID() != first {
			t.Fatalf("admission %d: ID %s, want %s", i, p.ID(), first)
		}
	}
	if whole, meta := n.get(); whole != 1 || meta != 20 {
		t.Errorf("20 admissions read the Secret whole %d times and its metadata %d times, want 1 and 20", whole, meta)
	}
	secret.Data[corev1.DockerConfigJsonKey] = []byte(credtest.DockerConfig(fmt.Sprintf(`"ghcr.io":{"auth":%q}`, credtest.B64("robot:rotated-"+credtest.SecretValue)))[corev1.DockerConfigJsonKey])
	if err := reader.Update(ctx(t), secret); err != nil {
		t.Fatal(err)
	}
	p, err := c.ReadPullSecrets(ctx(t), w)
	if err != nil {
		t.Fatal(err)
	}
	if p.ID() == first {
		t.Error("a rotated Secret kept its ID")
	}
	if got := p.Auths("ghcr.io", "org/app"); len(got) != 1 || !strings.HasPrefix(got[0].Password, "rotated-") {
		t.Error("a rotated Secret's new credential is not used")
	}
	if whole, _ := n.get(); whole != 2 {
		t.Errorf("after the rotation the Secret was read whole %d times in all, want 2", whole)
	}
}

// BenchmarkReadPullSecretsOfALargeSecret measures one admission's read of a
// 60 KiB pull Secret, as docs/reliability.md reports.
func BenchmarkReadPullSecretsOfALargeSecret(b *testing.B) {
	var auths []string
	for i := range 450 {
		auths = append(auths, fmt.Sprintf(`"r%d.example":{"auth":%q}`, i, credtest.B64(fmt.Sprintf("user%d:%s-%060d", i, credtest.SecretValue, i))))
	}
	s := credtest.Secret("team-a", "regcred", credtest.DockerConfig(strings.Join(auths, ",")))
	s.Type = corev1.SecretTypeDockerConfigJson
	reader := fake.NewClientBuilder().WithObjects(s).Build()
	c := credentials.New(credentials.WithSecretReader(reader))
	w := credentials.Workload{Namespace: "team-a", PullSecrets: []string{"regcred"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.ReadPullSecrets(context.Background(), w); err != nil {
			b.Fatal(err)
		}
	}
}
