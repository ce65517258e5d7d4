package webhook

import "time"

// restarted reports whether the pod template's restartedAt moved forward,
// as kubectl rollout restart does; a kubectl rollout undo moves it back.
func restarted(old, cur *object) bool {
	if old.tmplMeta == nil || cur.tmplMeta == nil {
		return false
	}
	n, o := restartedAt(cur), restartedAt(old)
	if n == "" || n == o {
		return false
	}
	nt, err1 := time.Parse(time.RFC3339, n)
	ot, err2 := time.Parse(time.RFC3339, o)
	if err1 == nil && (o == "" || err2 == nil) {
		return o == "" || nt.After(ot)
	}
	return n > o
}

func restartedAt(o *object) string {
	if o.tmplMeta == nil {
		return ""
	}
	return o.tmplMeta.Annotations[restartedAtKey]
}

// sameImages reports whether every container has the image old names for it.
func sameImages(ctrs []container, old map[string]string) bool {
	for _, c := range ctrs {
		if old[c.name] != c.image {
			return false
		}
	}
	return true
}
