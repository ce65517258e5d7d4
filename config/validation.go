package config

import (
	"fmt"
	"net/url"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/image-pin/image-pin-webhook/registries"
	"github.com/image-pin/image-pin-webhook/registries/client"
	"github.com/image-pin/image-pin-webhook/registries/credentials"
	"github.com/image-pin/image-pin-webhook/registries/imageref"
	"github.com/image-pin/image-pin-webhook/resolver"
)

// Validation, as cert-manager's webhook does it: each part of the file is
// defaulted, then checked, and every error is returned at once with its
// field path (field.ErrorList); InvalidError renders them, one per line.

// spec makes the decoded file a Spec, or returns every error it holds.
// labels gets each entry's and rule's name, for the messages.
func (f file) spec(labels map[string]string) (*Spec, field.ErrorList) {
	var errs field.ErrorList
	regs := field.NewPath("registries")
	spec := &Spec{Registries: make([]Registry, 0, len(f.Registries))}
	entries := make([]*registries.Entry, 0, len(f.Registries))
	for i, rc := range f.Registries {
		p := regs.Index(i)
		label(labels, p, rc.Name)
		e, rerrs := rc.entry(p)
		rp, perrs := rc.policy(p)
		errs = append(append(errs, rerrs...), perrs...)
		spec.Registries = append(spec.Registries, Registry{Entry: *e, Policy: rp})
		entries = append(entries, e)
	}
	if len(errs) == 0 {
		// Duplicates are judged on defaulted, valid prefixes only.
		errs = append(errs, registries.ValidateEntries(entries, regs)...)
	}
	pol, perrs := f.Policy.policy(field.NewPath("policy"), labels)
	errs = append(errs, perrs...)
	spec.Policy = pol
	return spec, errs
}

// label names the list item at p in messages: registries[0] "ECR".
func label(labels map[string]string, p *field.Path, name string) {
	if name != "" {
		labels[p.String()] = fmt.Sprintf("%s %q", lastSegment(p), name)
	}
}

func lastSegment(p *field.Path) string {
	s := p.String()
	if i := strings.LastIndex(s, "."); i >= 0 {
		return s[i+1:]
	}
	return s
}

// invalid is a field error whose message is detail alone: the value is in
// it when it may be shown, and never for credentials.
func invalid(p *field.Path, detail string) *field.Error {
	return field.Invalid(p, field.OmitValueType{}, detail)
}

// entry makes a registries entry how to reach the registry, defaulted and
// validated; its errors are under p. The entry is returned even when it is
// invalid, so that the rest of the file is still checked.
func (rc registryConf) entry(p *field.Path) (*registries.Entry, field.ErrorList) {
	var errs field.ErrorList
	e := &registries.Entry{
		Config: client.Config{
			Name: rc.Name, Ping: rc.Ping, Insecure: rc.Insecure,
			CredsExpire: rc.CredsExpire.Duration, CredsTimeout: rc.CredsTimeout.Duration,
			Limit: rc.Limit, CAFile: rc.CAFile, CAData: rc.CAData,
		},
		Prefix: rc.Prefix, Default: rc.Default, DefaultNS: rc.DefaultNS, Namespaces: rc.Namespaces,
	}
	switch u, err := url.Parse(strings.TrimSpace(rc.APIURL)); {
	case hasUserinfo(rc.APIURL):
		// Never repeated: it is likely a password. Dropping it silently
		// would leave the user wondering why lookups are anonymous.
		errs = append(errs, invalid(p.Child("api_url"), "must not hold a user name or password (user:password@, or any @); give them in credentials: (env:, secret:, pullsecret: or ext:) instead"))
	case err != nil:
		errs = append(errs, invalid(p.Child("api_url"), fmt.Sprintf("%q is not a URL", rc.APIURL)))
	case rc.APIURL != "":
		e.APIURL = u
	}
	if rc.Credentials != "" {
		// Parsed here, once: everything after reads the typed Source.
		src, err := credentials.ParseSource(rc.Credentials)
		if err != nil {
			errs = append(errs, invalid(p.Child("credentials"), err.Error()))
		}
		e.Credentials = src
	}
	e.SetDefaults()
	apiURLBad := len(errs) > 0 && errs[0].Field == p.Child("api_url").String()
	for _, fe := range e.Validate(p) {
		if apiURLBad && fe.Field == p.Child("api_url").String() {
			continue // said above, and better
		}
		errs = append(errs, fe)
	}
	return e, errs
}

// policy reads the entry's on_error, tagsortmode and platforms.
func (rc registryConf) policy(p *field.Path) (RegistryPolicy, field.ErrorList) {
	var errs field.ErrorList
	rp := RegistryPolicy{OnError: OnError(rc.OnError), Platforms: rc.Platforms}
	switch rp.OnError {
	case OnErrorUnset, OnErrorIgnore, OnErrorFail:
	default:
		errs = append(errs, invalid(p.Child("on_error"), fmt.Sprintf("%q must be ignore or fail", rc.OnError)))
	}
	mode, err := resolver.ParseTagSortMode(rc.TagSortMode)
	if err != nil {
		errs = append(errs, invalid(p.Child("tagsortmode"), err.Error()))
	}
	rp.TagSortMode = mode
	for i, pl := range rp.Platforms {
		if parts := strings.Split(pl, "/"); len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
			errs = append(errs, invalid(p.Child("platforms").Index(i), fmt.Sprintf("%q must be os/arch or os/arch/variant", pl)))
		}
	}
	return rp, errs
}

// Validate checks a defaulted policy block's own fields, each under p; the
// steering fields (strategy, images) are checked as policy parses them. It
// changes nothing.
func (pc policyConf) Validate(p *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch Mode(pc.Mode) {
	case ModePin, ModeReport:
	default:
		errs = append(errs, invalid(p.Child("mode"), fmt.Sprintf("%q must be pin or report", pc.Mode)))
	}
	switch OnError(pc.OnError) {
	case OnErrorIgnore, OnErrorFail:
	default:
		errs = append(errs, invalid(p.Child("on_error"), fmt.Sprintf("%q must be ignore or fail", pc.OnError)))
	}
	if *pc.MaxCandidateTags < 1 {
		errs = append(errs, invalid(p.Child("max_candidate_tags"), fmt.Sprintf("%d must be at least 1", *pc.MaxCandidateTags)))
	}
	if *pc.MaxLookups < 1 {
		errs = append(errs, invalid(p.Child("max_lookups"), fmt.Sprintf("%d must be at least 1", *pc.MaxLookups)))
	}
	if pc.RefreshWindow.Duration < 0 {
		errs = append(errs, invalid(p.Child("refresh_window"), fmt.Sprintf("%s must not be negative", pc.RefreshWindow.Duration)))
	}
	// A record deleted while in use would only be written again.
	if pc.RecordRetention.Duration <= 0 {
		errs = append(errs, invalid(p.Child("record_retention"), fmt.Sprintf("%s must be positive", pc.RecordRetention.Duration)))
	}
	if *pc.MaxRecordsPerNS < 0 {
		errs = append(errs, invalid(p.Child("max_records_per_namespace"), fmt.Sprintf("%d must not be negative (0 keeps every answer in memory)", *pc.MaxRecordsPerNS)))
	}
	if *pc.MaxRecords < 0 {
		errs = append(errs, invalid(p.Child("max_records"), fmt.Sprintf("%d must not be negative (0 keeps every answer in memory)", *pc.MaxRecords)))
	}
	return errs
}

// policy defaults and validates the policy block, then makes it a Policy
// (the steering fields through the one parser every source shares).
func (pc policyConf) policy(p *field.Path, labels map[string]string) (Policy, field.ErrorList) {
	pc.Default()
	errs := pc.Validate(p) // and go on: the rules' errors are reported with its
	pol := Policy{
		Mode: Mode(pc.Mode), OnError: OnError(pc.OnError), CacheTTL: pc.CacheTTL.Duration, ResolveTimeout: pc.ResolveTimeout.Duration,
		MaxCandidateTags: *pc.MaxCandidateTags, MaxLookups: *pc.MaxLookups,
		RefreshWindow: pc.RefreshWindow.Duration, RecordRetention: pc.RecordRetention.Duration,
		MaxRecordsPerNamespace: *pc.MaxRecordsPerNS, MaxRecords: *pc.MaxRecords,
	}
	defaults, err := ParseSteering(resolver.Written{Strategy: set(pc.Strategy)})
	if err != nil {
		errs = append(errs, invalid(p, err.Error()))
	}
	pol.Defaults = defaults
	seen := map[string]bool{}
	for i, r := range pc.Images {
		ip := p.Child("images").Index(i)
		if strings.TrimSpace(r.Prefix) == "" {
			errs = append(errs, field.Required(ip.Child("prefix"), "must be set"))
			continue
		}
		label(labels, ip, r.Prefix)
		prefix := imageref.CanonicalPrefix(r.Prefix)
		if seen[prefix] {
			errs = append(errs, invalid(ip.Child("prefix"), "duplicate of an earlier rule"))
			continue
		}
		seen[prefix] = true
		st, err := ParseSteering(resolver.Written{
			Strategy: set(r.Strategy), Constraint: set(r.Constraint), AllowTags: set(r.AllowTags), IgnoreTags: r.IgnoreTags,
		})
		if err != nil {
			errs = append(errs, invalid(ip, err.Error()))
			continue
		}
		pol.Images = append(pol.Images, ImageRule{Prefix: prefix, Steering: st})
	}
	sort.SliceStable(pol.Images, func(i, j int) bool { return len(pol.Images[i].Prefix) > len(pol.Images[j].Prefix) })
	return pol, errs
}
