package imageref

import (
	"errors"
	"fmt"
	"strings"

	"github.com/distribution/reference"
)

// checkReference refuses what the reference grammar of containerd and
// Kubernetes (github.com/distribution/reference) refuses, before anything
// else looks at ref. go-containerregistry's parser is looser: it accepts
// "." and ".." path segments, which would match one entry's prefix (and
// credentials) while a registry that cleans paths answers for another
// repository: host/team-b/../team-a/app is team-a/app.
func checkReference(ref string) error {
	name := ref
	if i := strings.IndexByte(name, '@'); i >= 0 {
		name = name[:i]
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == "." || seg == ".." || strings.HasPrefix(seg, "..:") || strings.HasPrefix(seg, ".:") {
			return fmt.Errorf("a path segment is %q, which could name another repository", strings.SplitN(seg, ":", 2)[0])
		}
	}
	if _, err := reference.ParseNormalizedNamed(ref); err != nil {
		// The library's messages name the rule, and some repeat the
		// reference, which the caller already quotes.
		return errors.New(strings.ReplaceAll(err.Error(), ref, "it"))
	}
	return nil
}
