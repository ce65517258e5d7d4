package credentials

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
)

// cloudLogin turns the workload identity of the pod the webhook runs in into
// a registry credential, as the cloud's own login command (aws ecr
// get-login-password, gcloud auth print-access-token, az acr login) would.
// Each cloud lives in its own file (cloud_aws.go, cloud_gcp.go,
// cloud_azure.go); cloud_tokens.go caches what they return and
// cloud_refresh.go refreshes it.
type cloudLogin interface {
	// login returns the credential for the registry at host and the time the
	// cloud says it stops being valid.
	login(ctx context.Context, host string) (authn.AuthConfig, time.Time, error)
}

// cloudKinds are the credential kinds that log in with a workload identity,
// each with the options its source may carry after the colon.
var cloudKinds = map[Kind]struct {
	options []string
	new     func(opts map[string]string, host string) (cloudLogin, error)
}{
	KindAWS:   {options: []string{"region"}, new: newAWSLogin},
	KindGCP:   {new: newGCPLogin},
	KindAzure: {options: []string{"tenant", "client", "allowhost"}, new: newAzureLogin},
}

// Check checks, when the config is read, that the source can serve the
// registry at host: a cloud source must know what it needs from the host
// and its options (an aws: entry on a host that is not ECR-shaped needs
// region=). It does no I/O.
func (src Source) Check(host string) error {
	if !src.Kind.IsCloud() {
		return nil
	}
	opts, err := cloudOptions(src.Kind, src.Cloud)
	if err != nil {
		return err
	}
	_, err = cloudKinds[src.Kind].new(opts, host)
	return err
}

// cloudOptions parses the part after aws:, gcp: or azure:, a comma-separated
// list of key=value. Errors name the key, never the value.
func cloudOptions(kind Kind, rest string) (map[string]string, error) {
	known := cloudKinds[kind].options
	opts := map[string]string{}
	if rest == "" {
		return opts, nil
	}
	for _, kv := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || v == "" {
			return nil, fmt.Errorf("%s: options must be key=value separated by commas, e.g. %s", kind, cloudExample(kind))
		}
		found := false
		for _, o := range known {
			found = found || o == k
		}
		if !found && len(known) == 0 {
			return nil, fmt.Errorf("%s: takes no options, unknown option %q", kind, k)
		}
		if !found {
			return nil, fmt.Errorf("%s: unknown option %q: must be one of %s", kind, k, strings.Join(known, ", "))
		}
		if _, dup := opts[k]; dup {
			return nil, fmt.Errorf("%s: option %q given twice", kind, k)
		}
		if strings.ContainsAny(v, " \t#/:") {
			return nil, fmt.Errorf("%s: option %q must not hold a space, slash, colon or #", kind, k)
		}
		opts[k] = v
	}
	return opts, nil
}

func cloudExample(kind Kind) string {
	switch kind {
	case KindAWS:
		return "aws:region=eu-west-1"
	case KindAzure:
		return "azure:tenant=TENANT-ID,client=CLIENT-ID"
	}
	return string(kind) + ":"
}
