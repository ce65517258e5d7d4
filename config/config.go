package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/image-pin/image-pin-webhook/registries"
	"github.com/image-pin/image-pin-webhook/registries/imageref"
	"github.com/image-pin/image-pin-webhook/resolver"
)

// Mode says whether the webhook patches. The webhook acts on it.
type Mode string

const (
	// ModePin patches objects to pinned images.
	ModePin Mode = "pin"
	// ModeReport never patches; it warns what it would pin.
	ModeReport Mode = "report"
)

// OnError says what an admission does when an image cannot be resolved.
// The webhook acts on it.
type OnError string

const (
	// OnErrorUnset defers (in a registry entry) to the policy's on_error.
	OnErrorUnset OnError = ""
	// OnErrorIgnore admits the object (pinned to the last known digest, if any).
	OnErrorIgnore OnError = "ignore"
	// OnErrorFail denies the admission.
	OnErrorFail OnError = "fail"
)

// RegistryPolicy is what a registries entry says of the answers obtained
// through it rather than of how to reach it: registries.Entry holds the
// latter.
type RegistryPolicy struct {
	// OnError is the entry's on_error; unset defers to the policy's.
	OnError OnError
	// TagSortMode is the entry's tagsortmode, for newest-build.
	TagSortMode resolver.TagSortMode
	// Platforms an index must cover.
	Platforms []string
}

// Spec is a validated config as plain data: what the file says, with
// defaults applied, and nothing live (no clients, no connections). Decode
// makes it; Build makes a Config from it.
type Spec struct {
	Registries []Registry // in the file's order
	Policy     Policy
}

// Registry is one registries entry of the file: how to reach the registry
// (registries.Entry) and what the policy says of the answers obtained
// through it.
type Registry struct {
	Entry  registries.Entry
	Policy RegistryPolicy
}

// Config is the config in force: a Spec with the live registries built from
// it. It is immutable once built; a reload builds a new one.
type Config struct {
	Registries *registries.Set
	Policy     Policy
	// policies is each built entry's RegistryPolicy, by the entry the Set
	// holds (never by a name or prefix joined back).
	policies map[*registries.Entry]RegistryPolicy
}

// RegistryPolicy is the policy of e, an entry of c.Registries.
func (c *Config) RegistryPolicy(e *registries.Entry) RegistryPolicy { return c.policies[e] }

// Policy is the policy block.
type Policy struct {
	Mode           Mode
	Defaults       Steering
	OnError        OnError
	CacheTTL       time.Duration
	ResolveTimeout time.Duration
	// MaxCandidateTags bounds the tags newest-build reads build dates of.
	MaxCandidateTags int
	// MaxLookups bounds the lookups of one admission.
	MaxLookups int
	// RefreshWindow: records used within it are refreshed ahead of
	// cache_ttl by the leader (0: no refresh). RecordRetention: records
	// unused this long are deleted. MaxRecordsPerNamespace bounds the
	// records one namespace's admissions create; past it, answers stay in
	// memory. MaxRecords bounds the records of all namespaces together.
	RefreshWindow          time.Duration
	RecordRetention        time.Duration
	MaxRecordsPerNamespace int
	MaxRecords             int
	Images                 []ImageRule // longest prefix first
}

// ImageRule is one policy.images entry.
type ImageRule struct {
	Prefix   string // canonical, as imageref.CanonicalPrefix gives
	Steering Steering
}

// Rule returns what the longest policy.images prefix that img matches on a
// path-segment boundary says.
func (p *Policy) Rule(img imageref.Image) Steering {
	var s Steering
	best := -1
	for _, r := range p.Images {
		if n, ok := img.PrefixMatch(r.Prefix); ok && n > best {
			s, best = r.Steering, n
		}
	}
	return s
}

// Load reads and validates the config file at path. An invalid config is
// an *InvalidError naming the file, and for each error the entry and field.
func Load(path string, opts ...registries.SetOption) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	c, err := Parse(data, opts...)
	var invalid *InvalidError
	if errors.As(err, &invalid) {
		invalid.File = path
		return nil, invalid
	}
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes a config document and builds it: Decode then Build.
func Parse(data []byte, opts ...registries.SetOption) (*Config, error) {
	spec, err := Decode(data)
	if err != nil {
		return nil, err
	}
	return Build(spec, opts...)
}

// Build makes the live registries of spec: the one place where a config
// becomes clients. Entries are never shared between builds, so a reload
// gets fresh clients; the resolver's caches outlive it, keyed by each
// entry's identity, so an entry whose identity changed starts fresh.
func Build(spec *Spec, opts ...registries.SetOption) (*Config, error) {
	entries := make([]*registries.Entry, len(spec.Registries))
	policies := make(map[*registries.Entry]RegistryPolicy, len(spec.Registries))
	for i, r := range spec.Registries {
		e := r.Entry
		entries[i] = &e
		policies[&e] = r.Policy
	}
	set, err := registries.NewSet(entries, opts...)
	if err != nil {
		return nil, err
	}
	return &Config{Registries: set, Policy: spec.Policy, policies: policies}, nil
}

// Decode validates a config document into plain data. An invalid document
// is an *InvalidError with every error at once, each naming the entry and
// the field.
func Decode(data []byte) (*Spec, error) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("not valid YAML: %v%s", err, colonHint(data))
	}
	var f file
	invalid := &InvalidError{labels: map[string]string{}}
	if len(root.Content) > 0 {
		doc := root.Content[0]
		invalid.Errs = checkKeys(doc, reflect.TypeOf(f), nil, invalid.labels)
		if err := doc.Decode(&f); err != nil {
			var te *yaml.TypeError
			invalid.Errs = append(invalid.Errs, decodeError(doc, err, invalid.labels)...)
			if !errors.As(err, &te) {
				return nil, invalid // nothing decoded to validate
			}
		}
	}
	// A value that did not decode is left zero: validated, it would only be
	// refused again, so its field's errors are the decoder's alone.
	decoded := map[string]bool{}
	for _, fe := range invalid.Errs {
		decoded[fe.Field] = true
	}
	spec, errs := f.spec(invalid.labels)
	for _, fe := range errs {
		if !decoded[fe.Field] {
			invalid.Errs = append(invalid.Errs, fe)
		}
	}
	if len(invalid.Errs) > 0 {
		return nil, invalid
	}
	return spec, nil
}

// hasUserinfo reports whether a URL may name a user before its host,
// whether or not the rest of it parses: any "@" after the scheme counts,
// since a password may hold "/", "?", "#" or "%", which end the authority
// of a parsed URL before the "@" is reached. No registry's API URL needs an
// "@" in its path.
func hasUserinfo(raw string) bool {
	return strings.Contains(raw, "@")
}

// set is a field of the config file: an empty one is not set.
func set(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
