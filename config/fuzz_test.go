package config_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/image-pin/image-pin-webhook/config"
)

// FuzzParse: any document either loads or gives an error, never a panic.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("registries:\n- {name: a, api_url: 'http://a', prefix: a, limit: -1}\n"))
	f.Fuzz(func(t *testing.T, doc []byte) {
		c, err := config.Parse(doc)
		if err == nil && c == nil {
			t.Fatal("nil config without an error")
		}
	})
}
