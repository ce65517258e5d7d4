package registries

import (
	"context"
	"net/http"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/image-pin/image-pin-webhook/registries/client"
	"github.com/image-pin/image-pin-webhook/registries/credentials"
)

// Target is where to look an image up: the entry to use, its client and
// the repository path at that entry's api_url.
type Target struct {
	Entry      *Entry
	Client     *client.Client
	Repository string
	// Identity is the entry's identity, which scopes every answer obtained
	// through it (see client.Identity); with the workload's pull secrets
	// (WithPullSecrets), their ID.
	Identity client.Identity

	pull *credentials.PullSecrets // imagepullsecrets: the admitted object's
}

// UsesPullSecrets reports whether the entry's credentials are the admitted
// object's own pull secrets (imagepullsecrets): a lookup then needs them,
// see WithPullSecrets.
func (t Target) UsesPullSecrets() bool {
	return t.Client != nil && t.Client.UsesPullSecrets()
}

// ReadPullSecrets reads the pull secrets w presents, for WithPullSecrets.
func (t Target) ReadPullSecrets(ctx context.Context, w credentials.Workload) (*credentials.PullSecrets, error) {
	return t.Client.ReadPullSecrets(ctx, w)
}

// WithPullSecrets is t looking up with the pull secrets an object presents.
// Their ID joins t's identity, so that every answer, failure, tag list and
// in-flight lookup obtained with them is kept apart from other workloads'.
func (t Target) WithPullSecrets(p *credentials.PullSecrets) Target {
	t.pull = p
	t.Identity.CredentialID = p.ID()
	return t
}

// Do is the client's DoWith with the target's pull secrets, if it carries any.
func (t Target) Do(ctx context.Context, repo name.Repository, f func(http.RoundTripper) error) error {
	return t.Client.DoWith(ctx, repo, t.pull, f)
}

// LoginName is the client's LoginNameWith for the target's repository, with
// the target's pull secrets, if it carries any.
func (t Target) LoginName(ctx context.Context) (string, error) {
	return t.Client.LoginNameWith(ctx, t.Repository, t.pull)
}
