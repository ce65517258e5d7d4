package state

import (
	"fmt"
	"strings"

	"github.com/image-pin/image-pin-webhook/api/v1alpha1"
	"github.com/image-pin/image-pin-webhook/config"
	"github.com/image-pin/image-pin-webhook/registries/imageref"
	"github.com/image-pin/image-pin-webhook/resolver"
)

// errPullSecrets is Rebuild's answer for a record of an imagepullsecrets
// entry: its query needs the admitted object's pull secrets, which the
// leader does not have. Such records are not refreshed ahead of use.
var errPullSecrets = fmt.Errorf("the entry's credentials are the admitted object's imagepullsecrets: not refreshed ahead of use")

// Rebuild is the query a record was made for, put together again from its
// spec with cfg, as an admission in the namespace that created it would:
// the entry by name, the image at its prefix's host, the record's policy
// fields over the config's. The caller compares its Hash with the
// record's: a query the config no longer makes is not refreshed.
func Rebuild(cfg *config.Config, spec v1alpha1.ImageResolutionSpec) (resolver.Query, error) {
	var host string
	for _, e := range cfg.Registries.Entries() {
		if e.Name == spec.Registry {
			host, _, _ = strings.Cut(e.Prefix, "/")
			break
		}
	}
	if host == "" {
		return resolver.Query{}, fmt.Errorf("the config has no registry entry %q", spec.Registry)
	}
	ref := host + "/" + spec.Repository
	if spec.Tag != "" {
		ref += ":" + spec.Tag
	}
	img, err := imageref.ParseImage(ref)
	if err != nil {
		return resolver.Query{}, err
	}
	w := resolver.Written{Strategy: &spec.Strategy, IgnoreTags: spec.IgnoreTags}
	if spec.Constraint != "" {
		w.Constraint = &spec.Constraint
	}
	if spec.AllowTags != "" {
		w.AllowTags = &spec.AllowTags
	}
	over, err := config.ParseSteering(w)
	if err != nil {
		return resolver.Query{}, err
	}
	q, ok, err := cfg.Query(img, spec.Namespace, over, false)
	switch {
	case err != nil:
		return resolver.Query{}, err
	case !ok:
		return resolver.Query{}, fmt.Errorf("no registry entry admits %s for namespace %s", ref, spec.Namespace)
	case q.Target.UsesPullSecrets():
		return resolver.Query{}, errPullSecrets
	}
	return q.Query, nil
}
