package client

import (
	"context"

	"github.com/image-pin/image-pin-webhook/registries/credentials"
)

// LoginNameWith names whom the entry's credentials log in as: the user name,
// never the password or token. It fetches them as a lookup would (from the
// cache while fresh) for a repository path at the entry, for the resolve
// command. pull is the admitted object's pull secrets, for an entry whose
// credentials are imagepullsecrets (nil otherwise).
func (c *Client) LoginNameWith(ctx context.Context, repository string, pull *credentials.PullSecrets) (string, error) {
	if c.source == nil {
		return "anonymous", nil
	}
	cand := 0
	if pull != nil {
		// The credential the last lookup was accepted with, if any.
		if repo, err := c.Repository(repository); err == nil {
			if ct, ok := c.transports.Peek(keyOf(repo, pull)); ok {
				cand = ct.candidate
			}
		}
	}
	auth, _, err := c.authenticator(ctx, repository, pull, cand)
	if err != nil {
		return "", err
	}
	cfg, err := auth.Authorization()
	if err != nil {
		return "", err
	}
	switch {
	case cfg.Username != "":
		return "user " + cfg.Username, nil
	case cfg.RegistryToken != "", cfg.IdentityToken != "":
		return "a registry token (no user name)", nil
	}
	return "anonymous", nil
}
