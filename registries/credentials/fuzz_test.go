package credentials_test

import (
	"strings"
	"testing"

	"github.com/image-pin/image-pin-webhook/registries/credentials"
)

// FuzzCredentialOutput: what a script prints gives credentials or an error
// that does not repeat it.
func FuzzCredentialOutput(f *testing.F) {
	for _, s := range []string{"AWS:token\n", "user:pass\r\n", "token", "", ":x", "a\nb", "u:p:q"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, out []byte) {
		_, err := credentials.ParseCredentialOutput(out)
		if err != nil && len(out) > 3 && strings.Contains(err.Error(), string(out)) {
			t.Fatalf("the error repeats the output: %v", err)
		}
	})
}
