package resolver

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
)

// Bounds of one tag listing, whatever a repository (or a hostile registry)
// holds: at the page size of 1000, maxTagPages pages are 50,000 tags.
const (
	maxTagPages = 50
	maxTagBytes = 4 << 20
	// maxCachedTags bounds the tags held by the tag-list cache in all
	// (about 10 MiB at 50 bytes a tag); the oldest lists go first.
	maxCachedTags = 200_000
)

// listCap counts the pages and bytes of one listing and refuses past the
// bounds, so that remote.List's pagination cannot run away.
type listCap struct {
	next http.RoundTripper

	mu           sync.Mutex
	pages, bytes int
}

func (l *listCap) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, "/tags/list") {
		l.mu.Lock()
		l.pages++
		n := l.pages
		l.mu.Unlock()
		if n > maxTagPages {
			return nil, fmt.Errorf("the tag list has more than %d pages: narrow the repository or ask its owner to prune tags", maxTagPages)
		}
	}
	resp, err := l.next.RoundTrip(r)
	if err != nil || !strings.HasSuffix(r.URL.Path, "/tags/list") {
		return resp, err
	}
	resp.Body = &capReader{r: resp.Body, l: l}
	return resp, nil
}

type capReader struct {
	r io.ReadCloser
	l *listCap
}

func (c *capReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.l.mu.Lock()
	c.l.bytes += n
	over := c.l.bytes > maxTagBytes
	c.l.mu.Unlock()
	if over {
		return n, fmt.Errorf("the tag list is longer than %d MiB", maxTagBytes>>20)
	}
	return n, err
}

func (c *capReader) Close() error { return c.r.Close() }
