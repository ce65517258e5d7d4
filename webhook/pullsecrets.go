package webhook

import (
	"cmp"
	"context"

	"github.com/image-pin/image-pin-webhook/registries/credentials"
)

// workload is what the admitted object presents to a registry: its
// namespace, its ServiceAccount and its own imagePullSecrets.
func (p *plan) workload() credentials.Workload {
	s := p.obj.spec
	w := credentials.Workload{Namespace: p.req.Namespace, ServiceAccount: cmp.Or(s.ServiceAccountName, s.DeprecatedServiceAccount)}
	for _, r := range s.ImagePullSecrets {
		w.PullSecrets = append(w.PullSecrets, r.Name)
	}
	return w
}

// withPullSecrets gives every lookup through an entry whose credentials are
// imagepullsecrets the object's pull secrets, read once per admission and
// only when such a lookup is to run. A failure to read them (a missing
// Secret or ServiceAccount, no permission) fails those containers, as
// on_error says.
func (p *plan) withPullSecrets(ctx context.Context) {
	var (
		pull *credentials.PullSecrets
		err  error
		read bool
	)
	for _, t := range p.tasks {
		if t.fixed != "" || t.err != nil || !t.query.Target.UsesPullSecrets() {
			continue
		}
		if !read {
			pull, err = t.query.Target.ReadPullSecrets(ctx, p.workload())
			read = true
		}
		if err != nil {
			t.err = err
			continue
		}
		t.query.Target = t.query.Target.WithPullSecrets(pull)
	}
}
