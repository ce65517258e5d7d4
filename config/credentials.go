package config

import (
	"regexp"
	"strings"

	"github.com/image-pin/image-pin-webhook/registries/credentials"
)

// bareKind finds a credentials value written as a kind that takes no
// parameter followed by its colon (credentials: aws:), which YAML reads as
// the start of a mapping. The kinds come from credentials' one table.
var bareKind = regexp.MustCompile(`(?m)^\s*-?\s*credentials:\s*(` + bareKinds() + `):\s*(#.*)?$`)

func bareKinds() string {
	kinds := credentials.BareKinds()
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = regexp.QuoteMeta(string(k))
	}
	return strings.Join(names, "|")
}

// colonHint says how to write such a value when a document that does not
// parse holds one.
func colonHint(data []byte) string {
	m := bareKind.FindSubmatch(data)
	if m == nil {
		return ""
	}
	return " (credentials: " + string(m[1]) + ": is read as a mapping: write credentials: " + string(m[1]) + " without the colon, or quote it)"
}
