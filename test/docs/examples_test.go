// Package docs checks that every complete YAML example of README.md and
// docs/*.md is what it says it is: a config that the loader of `check` takes,
// chart values that the chart's schema takes and renders, or at least YAML.
package docs

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/image-pin/image-pin-webhook/config"
	"github.com/image-pin/image-pin-webhook/test/chart"
)

// example is one fenced yaml block, with the marker comment (if any) on the
// line before its fence: <!-- example: fragment --> or <!-- example: skip REASON -->.
type example struct {
	where  string // file:line of the fence
	marker string
	text   string
}

var markerRE = regexp.MustCompile(`^<!--\s*example:\s*(\S+)(.*?)-->\s*$`)

func examples(t *testing.T) []example {
	t.Helper()
	root := filepath.Join("..", "..")
	files, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	files = append([]string{filepath.Join(root, "README.md")}, files...)
	var out []example
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, f)
		sc := bufio.NewScanner(bytes.NewReader(data))
		var prev, marker string
		var cur *example
		var indent string
		for n := 1; sc.Scan(); n++ {
			line := sc.Text()
			trimmed := strings.TrimSpace(line)
			switch {
			case cur == nil && (trimmed == "```yaml" || trimmed == "```yml"):
				if m := markerRE.FindStringSubmatch(strings.TrimSpace(prev)); m != nil {
					marker = m[1]
				}
				indent = line[:len(line)-len(strings.TrimLeft(line, " "))]
				cur = &example{where: fmt.Sprintf("%s:%d", rel, n), marker: marker}
			case cur != nil && trimmed == "```":
				out = append(out, *cur)
				cur, marker = nil, ""
			case cur != nil:
				cur.text += strings.TrimPrefix(line, indent) + "\n"
			}
			if trimmed != "" {
				prev = line
			}
		}
	}
	return out
}

// configKeys are the top-level keys of the config file; an example with only
// these is a config (and, since the chart takes them as they are, values too).
var configKeys = map[string]bool{"registries": true, "policy": true}

func TestEveryYAMLExampleOfTheDocsIsValid(t *testing.T) {
	exs := examples(t)
	if len(exs) < 10 {
		t.Fatalf("found only %d yaml examples: is the extraction broken?", len(exs))
	}
	for _, ex := range exs {
		t.Run(ex.where, func(t *testing.T) {
			if ex.marker == "skip" {
				t.Skip("marked skip")
			}
			for i, doc := range strings.Split(ex.text, "\n---\n") {
				var m map[string]any
				if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
					t.Fatalf("document %d is not YAML: %v\n%s", i, err, doc)
				}
				if ex.marker == "fragment" || m == nil {
					continue
				}
				if _, ok := m["apiVersion"]; ok {
					if _, ok := m["kind"]; !ok {
						t.Errorf("a manifest without kind:\n%s", doc)
					}
					continue
				}
				// A piece of a manifest (metadata:, spec:) shown for its annotations.
				if _, ok := m["metadata"]; ok {
					continue
				}
				if _, ok := m["spec"]; ok {
					continue
				}
				onlyConfig := true
				for k := range m {
					onlyConfig = onlyConfig && configKeys[k]
				}
				if onlyConfig {
					if _, err := config.Parse([]byte(doc)); err != nil {
						t.Errorf("the config loader refuses it: %v\n%s", err, doc)
					}
					continue
				}
				if _, err := chart.Render("image-pin-webhook", "image-pin-system", m); err != nil {
					t.Errorf("the chart refuses these values: %v\n%s", err, doc)
				}
			}
		})
	}
}
