package webhook

import (
	"encoding/json"

	"github.com/image-pin/image-pin-webhook/registries/imageref"
)

// The original-images record is state an earlier admission wrote, and the
// restart and re-apply rules act on it. It goes stale whenever an image
// changes without the webhook writing the record (an older release of the
// webhook, an admission it never saw, an object labelled skip for a while),
// so every rule that reads it first checks that it still describes the image
// it is about, and every admission rewrites it to describe what is stored.

// originals reads original-images; a malformed value counts as absent.
func originals(ann map[string]string) map[string]string {
	v, ok := ann[OriginalImagesKey]
	if !ok {
		return nil
	}
	var m map[string]string
	if json.Unmarshal([]byte(v), &m) != nil {
		return nil
	}
	return m
}

// describes reports whether written is what a user wrote for the stored image:
// the same reference, or a pin of it that the webhook could have made (a
// digest added to the same repository; the same tag unless tagMayMove, as
// semver, newest-build and alphabetical choose another tag).
func (p *plan) describes(written, stored string, tagMayMove bool) bool {
	if written == "" {
		return false
	}
	if written == stored {
		return true
	}
	w, err1 := p.images.parse(written)
	s, err2 := p.images.parse(stored)
	if err1 != nil || err2 != nil || w.Digest != "" || s.Digest == "" || w.Repo != s.Repo {
		return false
	}
	return tagMayMove || tagOrLatest(w) == tagOrLatest(s)
}

func tagOrLatest(i imageref.Image) string {
	if i.Tag == "" {
		return "latest"
	}
	return i.Tag
}
