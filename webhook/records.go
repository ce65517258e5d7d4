package webhook

import (
	"encoding/json"
	"slices"
	"strings"
	"unicode/utf8"

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
// semver, newest-build and alphabetical choose another tag). It says the
// record may be the user's words for the stored image, never that the
// webhook chose its digest: the record is the object's, anyone who edits
// the object can write it, and an opt-out restores the written image only
// on the webhook's own answer (restoring, in update.go).
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

// encodeRecords writes the record as json.Marshal writes a map[string]string
// (keys sorted, HTML characters escaped), so that a record is rewritten only
// when what it says changes, without json.Marshal's reflection on every
// admission.
func encodeRecords(m map[string]string) string {
	keys := make([]string, 0, len(m))
	n := 2
	for k, v := range m {
		keys = append(keys, k)
		n += len(k) + len(v) + 6
	}
	slices.Sort(keys)
	var b strings.Builder
	b.Grow(n)
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		writeJSONString(&b, k)
		b.WriteByte(':')
		writeJSONString(&b, m[k])
	}
	b.WriteByte('}')
	return b.String()
}

// writeJSONString quotes s as encoding/json does by default.
func writeJSONString(b *strings.Builder, s string) {
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b.WriteByte('\\')
				b.WriteByte(c)
			case c == '\n':
				b.WriteString(`\n`)
			case c == '\r':
				b.WriteString(`\r`)
			case c == '\t':
				b.WriteString(`\t`)
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				b.WriteString(`\u00`)
				b.WriteByte(hex[c>>4])
				b.WriteByte(hex[c&0xf])
			default:
				b.WriteByte(c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteString(`\ufffd`)
		case r == '\u2028' || r == '\u2029':
			b.WriteString(`\u202`)
			b.WriteByte(hex[r&0xf])
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	b.WriteByte('"')
}
