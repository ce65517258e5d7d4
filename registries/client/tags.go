package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/image-pin/image-pin-webhook/registries/imageref"
)

// Bounds of one tag listing, whatever a repository (or a hostile registry)
// holds, so that neither a long listing nor next-page links that never end
// can hold memory or a lookup until its deadline: at 1,000 tags a page,
// maxTagPages pages are 50,000 tags; 1,000 tags of 80 characters take 90 kB.
const (
	maxTagPages = 50
	maxTagBytes = 4 << 20
)

// ListTags lists every tag of repo through rt (a transport from Do),
// following the registry's next-page links.
//
// It replaces go-containerregistry's remote.List, which checks each link's
// scheme against name.Registry.Scheme(): that guesses plain HTTP for
// loopback and RFC 1918 hosts, so an HTTPS registry on 10.x or 127.0.0.1
// failed at its second page. Here api_url's scheme decides, and a link is
// only followed to api_url's host.
func (c *Client) ListTags(ctx context.Context, rt http.RoundTripper, repo name.Repository, pageSize int) ([]string, error) {
	base := c.cfg.APIURL
	next := &url.URL{Scheme: base.Scheme, Host: base.Host, Path: "/v2/" + repo.RepositoryStr() + "/tags/list"}
	if pageSize > 0 {
		next.RawQuery = fmt.Sprintf("n=%d", pageSize)
	}
	client := &http.Client{Transport: rt}
	seen := map[string]bool{}
	var tags []string
	budget := int64(maxTagBytes)
	for page := 1; next != nil; page++ {
		if page > maxTagPages {
			return nil, fmt.Errorf("the tag list has more than %d pages: narrow the repository or ask its owner to prune tags", maxTagPages)
		}
		if seen[next.String()] {
			return nil, fmt.Errorf("page %d: the registry links back to %s, which was already listed", page, next.RequestURI())
		}
		seen[next.String()] = true
		got, link, err := c.tagPage(ctx, client, next, &budget)
		if err != nil {
			if page > 1 {
				return nil, fmt.Errorf("page %d (%s): %w", page, next.RequestURI(), err)
			}
			return nil, err
		}
		tags = append(tags, got...)
		next = link
	}
	return tags, nil
}

// tagPage fetches one page and returns its tags and the next page's URL,
// nil after the last.
func (c *Client) tagPage(ctx context.Context, client *http.Client, u *url.URL, budget *int64) ([]string, *url.URL, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		return nil, nil, err
	}
	var body struct {
		Tags []string `json:"tags"`
	}
	lr := &io.LimitedReader{R: resp.Body, N: *budget + 1}
	err = json.NewDecoder(lr).Decode(&body)
	*budget = lr.N - 1
	if *budget < 0 {
		return nil, nil, fmt.Errorf("the tag list is longer than %d MiB", maxTagBytes>>20)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("reading the tag list: %w", err)
	}
	next, err := c.nextPage(u, resp.Header.Values("Link"))
	if err != nil {
		return nil, nil, err
	}
	return body.Tags, next, nil
}

// nextPage resolves the Link header's rel="next" target against the page's
// URL. The link may only lead to api_url's host (anything else would let a
// registry send the credentials' token elsewhere), and is followed with
// api_url's scheme whatever it says: a registry behind a TLS-terminating
// proxy often writes http:// links.
func (c *Client) nextPage(page *url.URL, headers []string) (*url.URL, error) {
	target := nextLink(headers)
	if target == "" {
		return nil, nil
	}
	ref, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("the registry's next-page link %s: %v", imageref.Quote(target), err)
	}
	u := page.ResolveReference(ref)
	if !strings.EqualFold(u.Host, c.cfg.Host()) {
		return nil, fmt.Errorf("the registry's next-page link leads to %s, not to api_url's host %s", imageref.Quote(u.Host), c.cfg.Host())
	}
	u.Scheme, u.Host = c.cfg.APIURL.Scheme, c.cfg.Host()
	return u, nil
}

// nextLink returns the target of the rel="next" link of an RFC 8288 Link
// header (a lone link without rel counts, as go-containerregistry reads it),
// or "".
func nextLink(headers []string) string {
	var links []struct{ target, params string }
	for _, h := range headers {
		for h = strings.TrimSpace(h); strings.HasPrefix(h, "<"); {
			end := strings.IndexByte(h, '>')
			if end < 0 {
				break
			}
			target, rest := h[1:end], h[end+1:]
			params, after, _ := strings.Cut(rest, ",")
			links = append(links, struct{ target, params string }{target, params})
			h = strings.TrimSpace(after)
		}
	}
	for _, l := range links {
		for _, p := range strings.Split(l.params, ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
			if strings.EqualFold(k, "rel") {
				for _, rel := range strings.Fields(strings.Trim(v, `"`)) {
					if strings.EqualFold(rel, "next") {
						return l.target
					}
				}
			}
		}
	}
	if len(links) == 1 && !strings.Contains(strings.ToLower(links[0].params), "rel") {
		return links[0].target
	}
	return ""
}
