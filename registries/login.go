package registries

import "context"

// LoginName names whom the entry's credentials log in as: the user name,
// never the password or token. It fetches them as a lookup would (from the
// cache while fresh) for a repository path at the entry, for the resolve
// command. An entry whose credentials are imagepullsecrets needs the
// object's pull secrets: use Target.LoginName.
func (c *Client) LoginName(ctx context.Context, repository string) (string, error) {
	return c.loginName(ctx, repository, nil)
}

// LoginName is Client.LoginName for the target's repository, with the pull
// secrets the target carries (see WithPullSecrets).
func (t Target) LoginName(ctx context.Context) (string, error) {
	return t.Client.loginName(ctx, t.Repository, t.pull)
}

func (c *Client) loginName(ctx context.Context, repository string, pull *PullSecrets) (string, error) {
	if c.Entry.Source() == nil {
		return "anonymous", nil
	}
	auth, _, err := c.authenticator(ctx, repository, pull)
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
