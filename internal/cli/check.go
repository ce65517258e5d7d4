package cli

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/image-pin/image-pin-webhook/config"
	"github.com/image-pin/image-pin-webhook/registries"
	"github.com/image-pin/image-pin-webhook/registries/credentials"
	"github.com/image-pin/image-pin-webhook/resolver"
)

// DefaultConfig is where the server reads its config, and so where check
// and resolve look when --config is not given.
const DefaultConfig = "/etc/image-pin-webhook/config.yaml"

const checkUsage = `Usage: image-pin-webhook check [--config FILE] [-o text|json]

Validates the config offline, as the server does at start and on reload,
and prints each registry entry and the policy. Credentials are described
by where they come from, never by value. Exit 0 when valid, 1 when not.
`

// checkReport is what check prints with -o json.
type checkReport struct {
	Config     string      `json:"config"`
	Valid      bool        `json:"valid"`
	Error      string      `json:"error,omitempty"`
	Registries []entryView `json:"registries,omitempty"`
	Policy     *policyView `json:"policy,omitempty"`
}

type entryView struct {
	Name        string    `json:"name"`
	Prefix      string    `json:"prefix"`
	APIURL      string    `json:"api_url"`
	Credentials *credView `json:"credentials,omitempty"`
	Default     bool      `json:"default,omitempty"`
	Insecure    bool      `json:"insecure,omitempty"`
	Ping        bool      `json:"ping,omitempty"`
	Namespaces  []string  `json:"namespaces,omitempty"`
	Platforms   []string  `json:"platforms,omitempty"`
	OnError     string    `json:"on_error,omitempty"`
	Limit       int       `json:"limit"`
}

// credView describes an entry's credentials: the kind, the source as
// written (which names a variable, Secret or script, never a value) and
// where the value is read from. Identity is filled by resolve only.
type credView struct {
	Kind     string `json:"kind"`
	Source   string `json:"source"`
	From     string `json:"from"`
	Expire   string `json:"credsexpire,omitempty"`
	Identity string `json:"identity,omitempty"`
	// imagepullsecrets (resolve): the Secrets read, by name and
	// resourceVersion, and the ID answers obtained with them are kept under.
	PullSecrets  string `json:"pull_secrets,omitempty"`
	CredentialID string `json:"credential_id,omitempty"`
}

type policyView struct {
	Mode           string     `json:"mode"`
	Strategy       string     `json:"strategy"`
	OnError        string     `json:"on_error"`
	CacheTTL       string     `json:"cache_ttl"`
	ResolveTimeout string     `json:"resolve_timeout"`
	Images         []ruleView `json:"images,omitempty"`
}

type ruleView struct {
	Prefix     string   `json:"prefix"`
	Strategy   string   `json:"strategy,omitempty"`
	Constraint string   `json:"constraint,omitempty"`
	AllowTags  string   `json:"allow_tags,omitempty"`
	IgnoreTags []string `json:"ignore_tags,omitempty"`
}

func runCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, checkUsage); fs.PrintDefaults() }
	path := fs.String("config", DefaultConfig, "the config file to check")
	out := fs.String("o", "text", "output format: text or json")
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return ExitUsage
	}
	asJSON, err := outputFormat(*out)
	if err == nil && len(rest) > 0 {
		err = fmt.Errorf("unexpected arguments %q (check takes only flags)", rest)
	}
	if err != nil {
		fmt.Fprintln(stderr, "image-pin-webhook check:", err)
		return ExitUsage
	}
	// The server's own loader: the same errors, naming the file, the entry
	// and the field. It builds clients but makes no request.
	cfg, err := config.Load(*path)
	rep := checkReport{Config: *path, Valid: err == nil}
	if err != nil {
		rep.Error = err.Error()
	} else {
		for _, e := range cfg.Registries.Entries() {
			rep.Registries = append(rep.Registries, viewEntry(e, cfg.RegistryPolicy(e)))
		}
		pv := viewPolicy(cfg.Policy)
		rep.Policy = &pv
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else if err != nil {
		fmt.Fprintln(stderr, "image-pin-webhook check:", err)
	} else {
		printCheck(stdout, rep)
	}
	if err != nil {
		return ExitFail
	}
	return ExitOK
}

func viewEntry(e *registries.Entry, rp config.RegistryPolicy) entryView {
	v := entryView{Name: e.Name, Prefix: e.Prefix, APIURL: e.APIURL.String(), Default: e.Default, Insecure: e.Insecure,
		Ping: e.Ping, Namespaces: e.Namespaces, Platforms: rp.Platforms, OnError: string(rp.OnError), Limit: e.Limit}
	if src := e.Credentials; src != nil {
		v.Credentials = &credView{Kind: string(src.Kind), Source: src.String(), From: describeSource(*src, e)}
		if e.CredsExpire > 0 {
			v.Credentials.Expire = e.CredsExpire.String()
		}
	}
	return v
}

// describeSource says where a credential is read from, in words; it names
// variables, Secrets and scripts, never what they hold.
func describeSource(src credentials.Source, e *registries.Entry) string {
	switch src.Kind {
	case credentials.KindEnv:
		return fmt.Sprintf("environment variable %s of the webhook (user:password, or a token)", src.Var)
	case credentials.KindSecret:
		return fmt.Sprintf("key %q of Secret %s/%s, read through the Kubernetes API (user:password, or a token)", src.Key, src.Namespace, src.Name)
	case credentials.KindPullSecret:
		return fmt.Sprintf("the auths entry for %s in pull Secret %s/%s, read through the Kubernetes API", e.Host(), src.Namespace, src.Name)
	case credentials.KindExt:
		return fmt.Sprintf("what the script %s prints (user:password), run without a shell", src.Path)
	case credentials.KindImagePullSecrets:
		return fmt.Sprintf("the auths entry for %s in the admitted object's imagePullSecrets, else its ServiceAccount's, read through the Kubernetes API in the object's namespace", e.Host())
	}
	return src.String()
}

func viewPolicy(p config.Policy) policyView {
	v := policyView{Mode: string(p.Mode), Strategy: string(resolver.Digest), OnError: string(p.OnError),
		CacheTTL: p.CacheTTL.String(), ResolveTimeout: p.ResolveTimeout.String()}
	if d := viewFields("", p.Defaults); d.Strategy != "" {
		v.Strategy = d.Strategy
	}
	for _, r := range p.Images {
		v.Images = append(v.Images, viewFields(r.Prefix, r.Steering))
	}
	return v
}

func viewFields(prefix string, f config.Steering) ruleView {
	v := ruleView{Prefix: prefix}
	switch {
	case f.Skip:
		v.Strategy = config.SkipValue
	case f.Strategy != nil:
		v.Strategy = string(*f.Strategy)
	}
	if f.Constraint != nil {
		v.Constraint = f.Constraint.Text
	}
	if f.AllowTags != nil {
		v.AllowTags = f.AllowTags.Text
	}
	if f.IgnoreTags != nil {
		v.IgnoreTags = *f.IgnoreTags
	}
	return v
}

func printCheck(w io.Writer, rep checkReport) {
	fmt.Fprintf(w, "config %s is valid\n\n", rep.Config)
	fmt.Fprintf(w, "registries (%d, in matching order: longest prefix first):\n", len(rep.Registries))
	for _, e := range rep.Registries {
		fmt.Fprintf(w, "  %s\n", e.Name)
		fmt.Fprintf(w, "    prefix:      %s\n", e.Prefix)
		fmt.Fprintf(w, "    api_url:     %s\n", e.APIURL)
		if c := e.Credentials; c != nil {
			fmt.Fprintf(w, "    credentials: %s: %s\n", c.Kind, c.From)
			if c.Expire != "" {
				fmt.Fprintf(w, "                 cached for %s (credsexpire)\n", c.Expire)
			}
		} else {
			fmt.Fprintf(w, "    credentials: none (anonymous)\n")
		}
		var notes []string
		if e.Default {
			notes = append(notes, "default for Docker Hub images")
		}
		if e.Insecure {
			notes = append(notes, "insecure: TLS not verified")
		}
		if e.Ping {
			notes = append(notes, "pinged in the background")
		}
		if e.OnError != "" {
			notes = append(notes, "on_error: "+e.OnError)
		}
		if len(notes) > 0 {
			fmt.Fprintf(w, "    also:        %s\n", strings.Join(notes, "; "))
		}
		ns := "all"
		if len(e.Namespaces) > 0 {
			ns = strings.Join(e.Namespaces, ", ")
		}
		fmt.Fprintf(w, "    namespaces:  %s\n", ns)
		if len(e.Platforms) > 0 {
			fmt.Fprintf(w, "    platforms:   %s\n", strings.Join(e.Platforms, ", "))
		}
	}
	p := rep.Policy
	fmt.Fprintf(w, "\npolicy:\n  mode: %s\n  strategy: %s\n  on_error: %s\n  cache_ttl: %s\n  resolve_timeout: %s\n",
		p.Mode, p.Strategy, p.OnError, p.CacheTTL, p.ResolveTimeout)
	if len(p.Images) == 0 {
		fmt.Fprintln(w, "  images: none")
		return
	}
	fmt.Fprintln(w, "  images (longest prefix first):")
	for _, r := range p.Images {
		fmt.Fprintf(w, "    %s: %s\n", r.Prefix, describeFields(r))
	}
}

func describeFields(r ruleView) string {
	var parts []string
	if r.Strategy != "" {
		parts = append(parts, "strategy "+r.Strategy)
	}
	if r.Constraint != "" {
		parts = append(parts, fmt.Sprintf("constraint %q", r.Constraint))
	}
	if r.AllowTags != "" {
		parts = append(parts, fmt.Sprintf("allow_tags %q", r.AllowTags))
	}
	if len(r.IgnoreTags) > 0 {
		parts = append(parts, fmt.Sprintf("ignore_tags %q", r.IgnoreTags))
	}
	if len(parts) == 0 {
		return "(policy defaults)"
	}
	return strings.Join(parts, ", ")
}
