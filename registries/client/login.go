package client

import "context"

// LoginName names whom the entry's credentials log in as: the user name,
// never the password or token. It fetches them as a lookup would (from the
// cache while fresh) for a repository path at the entry, for the resolve
// command.
func (c *Client) LoginName(ctx context.Context, repository string) (string, error) {
	if c.source == nil {
		return "anonymous", nil
	}
	auth, _, err := c.authenticator(ctx, repository)
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
