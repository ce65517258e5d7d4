package config

import (
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// file is the config file as written. yaml.v3 decodes YAML 1.1 booleans
// (yes, no, on, off) into typed bool fields, which the seed's ping: yes needs.
type file struct {
	Registries []registryConf `yaml:"registries"`
	Policy     policyConf     `yaml:"policy"`
}

// registryConf is one entry of Argo CD Image Updater's registries.conf,
// unchanged, plus this project's fields (credstimeout, on_error, namespaces,
// platforms).
type registryConf struct {
	Name         string   `yaml:"name"`
	APIURL       string   `yaml:"api_url"`
	Prefix       string   `yaml:"prefix"`
	Ping         bool     `yaml:"ping"`
	Insecure     bool     `yaml:"insecure"`
	Credentials  string   `yaml:"credentials"`
	CredsExpire  duration `yaml:"credsexpire"`
	Default      bool     `yaml:"default"`
	DefaultNS    string   `yaml:"defaultns"`
	TagSortMode  string   `yaml:"tagsortmode"`
	Limit        int      `yaml:"limit"`
	CAFile       string   `yaml:"ca_file"`
	CAData       string   `yaml:"ca_data"`
	CredsTimeout duration `yaml:"credstimeout"`
	OnError      string   `yaml:"on_error"`
	Namespaces   []string `yaml:"namespaces"`
	Platforms    []string `yaml:"platforms"`
}

type policyConf struct {
	Mode             string      `yaml:"mode"`
	Strategy         string      `yaml:"strategy"`
	OnError          string      `yaml:"on_error"`
	CacheTTL         *duration   `yaml:"cache_ttl"`
	ResolveTimeout   duration    `yaml:"resolve_timeout"`
	MaxCandidateTags *int        `yaml:"max_candidate_tags"`
	MaxLookups       *int        `yaml:"max_lookups"`
	RefreshWindow    *duration   `yaml:"refresh_window"`
	RecordRetention  *duration   `yaml:"record_retention"`
	MaxRecordsPerNS  *int        `yaml:"max_records_per_namespace"`
	MaxRecords       *int        `yaml:"max_records"`
	Images           []imageRule `yaml:"images"`
}

type imageRule struct {
	Prefix     string   `yaml:"prefix"`
	Strategy   string   `yaml:"strategy"`
	Constraint string   `yaml:"constraint"`
	AllowTags  string   `yaml:"allow_tags"`
	IgnoreTags []string `yaml:"ignore_tags"`
}

// duration reads Go durations (10h, 90s) and a bare 0.
type duration struct{ time.Duration }

// UnmarshalYAML returns its errors as a *yaml.TypeError, so that yaml.v3
// goes on decoding the rest of the file and every error is reported at once.
func (d *duration) UnmarshalYAML(n *yaml.Node) error {
	if err := d.decode(n); err != nil {
		return &yaml.TypeError{Errors: []string{err.Error()}}
	}
	return nil
}

func (d *duration) decode(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("line %d: want a duration such as 10s or 5m", n.Line)
	}
	s = strings.TrimSpace(s)
	if s == "0" {
		d.Duration = 0
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration such as 10s or 5m", n.Line, s)
	}
	if v < 0 {
		return fmt.Errorf("line %d: %q must not be negative", n.Line, s)
	}
	d.Duration = v
	return nil
}
