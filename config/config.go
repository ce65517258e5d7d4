package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"reflect"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/image-pin/image-pin-webhook/registries"
	"github.com/image-pin/image-pin-webhook/registries/client"
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

// Defaults of the policy block.
const (
	DefaultCacheTTL       = 5 * time.Minute
	DefaultResolveTimeout = 8 * time.Second
	// DefaultMaxLookups bounds the registry lookups of one admission: a
	// pod template rarely has more than a handful of images.
	DefaultMaxLookups = 32
	// Resolution records (--state cluster): how long a use keeps a record
	// refreshed ahead, how long an unused one is kept, and how many one
	// namespace's admissions may create.
	DefaultRefreshWindow          = time.Hour
	DefaultRecordRetention        = 168 * time.Hour
	DefaultMaxRecordsPerNamespace = 1000
)

// Spec is a validated config as plain data: what the file says, with
// defaults applied, and nothing live (no clients, no connections). Decode
// makes it; Build makes a Config from it.
type Spec struct {
	Entries []*registries.Entry
	Policy  Policy
}

// Config is the config in force: a Spec with the live registries built from
// it. It is immutable once built; a reload builds a new one.
type Config struct {
	Registries *registries.Set
	Policy     Policy
}

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
	// memory.
	RefreshWindow          time.Duration
	RecordRetention        time.Duration
	MaxRecordsPerNamespace int
	Images                 []ImageRule // longest prefix first
	// Registries holds each registry entry's policy, by the entry's prefix
	// (canonical, and unique among entries).
	Registries map[string]RegistryPolicy
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

// Load reads and validates the config file at path.
func Load(path string, opts ...registries.SetOption) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	c, err := Parse(data, opts...)
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
	entries := make([]*registries.Entry, len(spec.Entries))
	for i, e := range spec.Entries {
		cp := *e
		entries[i] = &cp
	}
	set, err := registries.NewSet(entries, opts...)
	if err != nil {
		return nil, err
	}
	return &Config{Registries: set, Policy: spec.Policy}, nil
}

// Decode validates a config document into plain data. Errors name the
// entry and the field.
func Decode(data []byte) (*Spec, error) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("not valid YAML: %v%s", err, colonHint(data))
	}
	var f file
	if len(root.Content) > 0 {
		doc := root.Content[0]
		if err := checkKeys(doc, reflect.TypeOf(f), ""); err != nil {
			return nil, err
		}
		if err := doc.Decode(&f); err != nil {
			return nil, decodeError(doc, err)
		}
	}
	entries := make([]*registries.Entry, 0, len(f.Registries))
	regPolicies := make([]RegistryPolicy, 0, len(f.Registries))
	for i, rc := range f.Registries {
		e, rp, err := rc.entry()
		if err != nil {
			return nil, fmt.Errorf("registries[%d] %q: %w", i, rc.Name, err)
		}
		entries = append(entries, e)
		regPolicies = append(regPolicies, rp)
	}
	if err := registries.CheckEntries(entries); err != nil {
		return nil, err
	}
	pol, err := f.Policy.policy()
	if err != nil {
		return nil, err
	}
	pol.Registries = make(map[string]RegistryPolicy, len(entries))
	for i, e := range entries {
		pol.Registries[e.Prefix] = regPolicies[i]
	}
	return &Spec{Entries: entries, Policy: pol}, nil
}

// entry splits a registries entry into how to reach the registry and what
// the policy says of its answers, defaulted and validated.
func (rc registryConf) entry() (*registries.Entry, RegistryPolicy, error) {
	if hasUserinfo(rc.APIURL) {
		// Never repeated: it is likely a password. Dropping it silently
		// would leave the user wondering why lookups are anonymous.
		return nil, RegistryPolicy{}, fmt.Errorf("api_url: must not hold a user name or password (user:password@, or any @); give them in credentials: (env:, secret:, pullsecret: or ext:) instead")
	}
	u, err := url.Parse(strings.TrimSpace(rc.APIURL))
	if err != nil {
		return nil, RegistryPolicy{}, fmt.Errorf("api_url: %q is not a URL", rc.APIURL)
	}
	e := &registries.Entry{
		Config: client.Config{
			Name: rc.Name, APIURL: u, Ping: rc.Ping, Insecure: rc.Insecure,
			Credentials: rc.Credentials, CredsExpire: rc.CredsExpire.Duration, CredsTimeout: rc.CredsTimeout.Duration,
			Limit: rc.Limit, CAFile: rc.CAFile, CAData: rc.CAData,
		},
		Prefix: rc.Prefix, Default: rc.Default, DefaultNS: rc.DefaultNS, Namespaces: rc.Namespaces,
	}
	if rc.APIURL == "" {
		e.APIURL = nil
	}
	e.SetDefaults()
	if err := e.Validate(); err != nil {
		return nil, RegistryPolicy{}, err
	}
	rp, err := rc.policy()
	if err != nil {
		return nil, RegistryPolicy{}, err
	}
	return e, rp, nil
}

// policy reads the entry's on_error, tagsortmode and platforms.
func (rc registryConf) policy() (RegistryPolicy, error) {
	rp := RegistryPolicy{OnError: OnError(rc.OnError), Platforms: rc.Platforms}
	switch rp.OnError {
	case OnErrorUnset, OnErrorIgnore, OnErrorFail:
	default:
		return rp, fmt.Errorf("on_error: %q must be ignore or fail", rc.OnError)
	}
	mode, err := resolver.ParseTagSortMode(rc.TagSortMode)
	if err != nil {
		return rp, fmt.Errorf("tagsortmode: %w", err)
	}
	rp.TagSortMode = mode
	for _, p := range rp.Platforms {
		if parts := strings.Split(p, "/"); len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
			return rp, fmt.Errorf("platforms: %q must be os/arch or os/arch/variant", p)
		}
	}
	return rp, nil
}

// Default fills in what the policy block leaves unset. A field given as 0
// stays 0 for Validate to judge: cache_ttl: 0 turns the cache off, while
// max_candidate_tags: 0 is refused.
func (pc *policyConf) Default() {
	if pc.Mode == "" {
		pc.Mode = string(ModePin)
	}
	if pc.OnError == "" {
		pc.OnError = string(OnErrorIgnore)
	}
	if pc.CacheTTL == nil {
		pc.CacheTTL = &duration{DefaultCacheTTL}
	}
	if pc.ResolveTimeout.Duration == 0 {
		pc.ResolveTimeout.Duration = DefaultResolveTimeout
	}
	if pc.MaxCandidateTags == nil {
		n := resolver.DefaultMaxCandidates
		pc.MaxCandidateTags = &n
	}
	if pc.MaxLookups == nil {
		n := DefaultMaxLookups
		pc.MaxLookups = &n
	}
	if pc.RefreshWindow == nil {
		pc.RefreshWindow = &duration{DefaultRefreshWindow}
	}
	if pc.RecordRetention == nil {
		pc.RecordRetention = &duration{DefaultRecordRetention}
	}
	if pc.MaxRecordsPerNS == nil {
		n := DefaultMaxRecordsPerNamespace
		pc.MaxRecordsPerNS = &n
	}
}

// Validate checks a defaulted policy block's own fields; the steering
// fields (strategy, images) are checked as policy parses them. It changes
// nothing.
func (pc policyConf) Validate() error {
	switch Mode(pc.Mode) {
	case ModePin, ModeReport:
	default:
		return fmt.Errorf("policy: mode: %q must be pin or report", pc.Mode)
	}
	switch OnError(pc.OnError) {
	case OnErrorIgnore, OnErrorFail:
	default:
		return fmt.Errorf("policy: on_error: %q must be ignore or fail", pc.OnError)
	}
	if *pc.MaxCandidateTags < 1 {
		return fmt.Errorf("policy: max_candidate_tags: %d must be at least 1", *pc.MaxCandidateTags)
	}
	if *pc.MaxLookups < 1 {
		return fmt.Errorf("policy: max_lookups: %d must be at least 1", *pc.MaxLookups)
	}
	if pc.RefreshWindow.Duration < 0 {
		return fmt.Errorf("policy: refresh_window: %s must not be negative", pc.RefreshWindow.Duration)
	}
	// A record deleted while in use would only be written again.
	if pc.RecordRetention.Duration <= 0 {
		return fmt.Errorf("policy: record_retention: %s must be positive", pc.RecordRetention.Duration)
	}
	if *pc.MaxRecordsPerNS < 0 {
		return fmt.Errorf("policy: max_records_per_namespace: %d must not be negative (0 keeps every answer in memory)", *pc.MaxRecordsPerNS)
	}
	return nil
}

// policy defaults and validates the policy block, then makes it a Policy
// (the steering fields through the one parser every source shares).
func (pc policyConf) policy() (Policy, error) {
	pc.Default()
	if err := pc.Validate(); err != nil {
		return Policy{}, err
	}
	p := Policy{
		Mode: Mode(pc.Mode), OnError: OnError(pc.OnError), CacheTTL: pc.CacheTTL.Duration, ResolveTimeout: pc.ResolveTimeout.Duration,
		MaxCandidateTags: *pc.MaxCandidateTags, MaxLookups: *pc.MaxLookups,
		RefreshWindow: pc.RefreshWindow.Duration, RecordRetention: pc.RecordRetention.Duration,
		MaxRecordsPerNamespace: *pc.MaxRecordsPerNS,
	}
	defaults, err := ParseSteering(resolver.Written{Strategy: set(pc.Strategy)})
	if err != nil {
		return p, fmt.Errorf("policy: %w", err)
	}
	p.Defaults = defaults
	seen := map[string]bool{}
	for i, r := range pc.Images {
		if strings.TrimSpace(r.Prefix) == "" {
			return p, fmt.Errorf("policy: images[%d]: prefix: must be set", i)
		}
		prefix := imageref.CanonicalPrefix(r.Prefix)
		if seen[prefix] {
			return p, fmt.Errorf("policy: images[%d] %q: prefix: duplicate of an earlier rule", i, r.Prefix)
		}
		seen[prefix] = true
		st, err := ParseSteering(resolver.Written{
			Strategy: set(r.Strategy), Constraint: set(r.Constraint), AllowTags: set(r.AllowTags), IgnoreTags: r.IgnoreTags,
		})
		if err != nil {
			return p, fmt.Errorf("policy: images[%d] %q: %w", i, r.Prefix, err)
		}
		p.Images = append(p.Images, ImageRule{Prefix: prefix, Steering: st})
	}
	sort.SliceStable(p.Images, func(i, j int) bool { return len(p.Images[i].Prefix) > len(p.Images[j].Prefix) })
	return p, nil
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

// checkKeys refuses keys that t (a struct with yaml tags) does not have,
// in n and in the structs and lists of structs below it, naming where.
func checkKeys(n *yaml.Node, t reflect.Type, where string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for i, item := range n.Content {
			if err := checkKeys(item, t.Elem(), fmt.Sprintf("%s[%d]%s", where, i, entryName(item))); err != nil {
				return err
			}
		}
		return nil
	case t.Kind() != reflect.Struct || n.Kind != yaml.MappingNode:
		return nil
	}
	fieldsByKey := map[string]reflect.Type{}
	var known []string
	for i := 0; i < t.NumField(); i++ {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if tag != "" {
			fieldsByKey[tag] = t.Field(i).Type
			known = append(known, tag)
		}
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i].Value
		ft, ok := fieldsByKey[k]
		if !ok {
			return fmt.Errorf("%sline %d: unknown key %q (known: %s)", prefixed(where), n.Content[i].Line, k, strings.Join(known, ", "))
		}
		if ft.Kind() == reflect.Struct && ft.Name() == "duration" {
			continue
		}
		if err := checkKeys(n.Content[i+1], ft, join(where, k)); err != nil {
			return err
		}
	}
	return nil
}

func entryName(n *yaml.Node) string {
	if n.Kind != yaml.MappingNode {
		return ""
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i].Value; k == "name" || k == "prefix" {
			return fmt.Sprintf(" %q", n.Content[i+1].Value)
		}
	}
	return ""
}

func join(where, k string) string {
	if where == "" {
		return k
	}
	return where + ": " + k
}

func prefixed(where string) string {
	if where == "" {
		return ""
	}
	return where + ": "
}

// decodeError names the entry whose field failed to decode: yaml.v3 gives
// the line, which is mapped back to the entry that holds it.
func decodeError(doc *yaml.Node, err error) error {
	var te *yaml.TypeError
	all := []string{err.Error()}
	if errors.As(err, &te) {
		all = te.Errors
	}
	msgs := make([]string, 0, len(all))
	for _, m := range all {
		msgs = append(msgs, locate(doc, m)+m)
	}
	return errors.New(strings.Join(msgs, "; "))
}

// locate finds "registries[i] "name": field: " for a yaml.v3 message that
// starts with "line N:".
func locate(doc *yaml.Node, msg string) string {
	var line int
	if _, err := fmt.Sscanf(msg, "line %d:", &line); err != nil {
		return ""
	}
	var found string
	var walk func(n *yaml.Node, where string)
	walk = func(n *yaml.Node, where string) {
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				if k.Line == line || v.Line == line && v.Kind == yaml.ScalarNode {
					found = join(where, k.Value)
					return
				}
				walk(v, join(where, k.Value))
			}
		case yaml.SequenceNode:
			for i, item := range n.Content {
				walk(item, fmt.Sprintf("%s[%d]%s", where, i, entryName(item)))
			}
		}
	}
	walk(doc, "")
	if found == "" {
		return ""
	}
	return found + ": "
}
