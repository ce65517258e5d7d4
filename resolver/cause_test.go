package resolver_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/image-pin/image-pin-webhook/resolver"
	"github.com/image-pin/image-pin-webhook/test/registrytest"
)

func TestCauseOfClassifiesByTypeAndCodeNeverByText(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want resolver.Cause
	}{
		{"a 404 without a body (a manifest HEAD) is not found", &transport.Error{StatusCode: 404}, resolver.CauseNotFound},
		{"an unknown repository is not found", &transport.Error{StatusCode: 404, Errors: []transport.Diagnostic{{Code: transport.NameUnknownErrorCode}}}, resolver.CauseNotFound},
		{"MANIFEST_UNKNOWN with another status is not found", &transport.Error{StatusCode: 400, Errors: []transport.Diagnostic{{Code: transport.ManifestUnknownErrorCode}}}, resolver.CauseNotFound},
		{"a 401 is unauthorized", &transport.Error{StatusCode: 401}, resolver.CauseUnauthorized},
		{"a 403 is unauthorized", &transport.Error{StatusCode: 403}, resolver.CauseUnauthorized},
		{"DENIED with another status is unauthorized", &transport.Error{StatusCode: 400, Errors: []transport.Diagnostic{{Code: transport.DeniedErrorCode}}}, resolver.CauseUnauthorized},
		{"a 503 is an error", &transport.Error{StatusCode: 503}, resolver.CauseError},
		{"a 429 is an error", &transport.Error{StatusCode: 429, Errors: []transport.Diagnostic{{Code: transport.TooManyRequestsErrorCode}}}, resolver.CauseError},
		{"a wrapped 404 is still not found", fmt.Errorf("looking up x: %w", &transport.Error{StatusCode: 404}), resolver.CauseNotFound},
		{"a deadline is an error", fmt.Errorf("no answer in time: %w", context.DeadlineExceeded), resolver.CauseError},
		{"text that says 404 is not a 404", errors.New("unexpected status code 404 Not Found"), resolver.CauseError},
		{"text that says unauthorized is not a 401", errors.New("UNAUTHORIZED: authentication required"), resolver.CauseError},
		{"nil-free plain errors are errors", errors.New("dial tcp: connection refused"), resolver.CauseError},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := resolver.CauseOf(tc.err); got != tc.want {
				t.Errorf("CauseOf(%v) = %s, want %s", tc.err, got, tc.want)
			}
		})
	}
}

// Each failure a user can cause or suffer, against a real registry, lands
// in the result its class says, so that an alert on registry errors never
// fires on a tag an app team mistyped.
func TestAFailedResolutionIsCountedByItsCause(t *testing.T) {
	status := func(code int) func(w http.ResponseWriter, r *http.Request) bool {
		return func(w http.ResponseWriter, r *http.Request) bool {
			if !strings.Contains(r.URL.Path, "/manifests/") && !strings.Contains(r.URL.Path, "/tags/") {
				return false
			}
			w.WriteHeader(code)
			return true
		}
	}
	allowNone, err := resolver.ParseAllowTags("regexp:^nothing$")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		repo, tag string
		policy    func(t *testing.T) resolver.Policy
		login     string // the entry's user:pass, u:p when empty
		opts      []entryOption
		fault     func(w http.ResponseWriter, r *http.Request) bool
		want      resolver.Cause
	}{
		{"a tag that does not exist", "app", "nosuchtag", func(*testing.T) resolver.Policy { return digestPolicy() }, "", nil, nil, resolver.CauseNotFound},
		{"a repository that does not exist, listing its tags", "nosuchrepo", "", func(t *testing.T) resolver.Policy { return semverPolicy(t, "~1") }, "", nil, nil, resolver.CauseNotFound},
		{"no tag meets the semver constraint", "app", "", func(t *testing.T) resolver.Policy { return semverPolicy(t, "~7") }, "", nil, nil, resolver.CauseNotFound},
		{"no tag passes allow_tags", "app", "", func(*testing.T) resolver.Policy {
			return resolver.Policy{Strategy: resolver.Alphabetical, AllowTags: allowNone, CacheTTL: time.Minute}
		}, "", nil, nil, resolver.CauseNotFound},
		{"the index does not cover the entry's platforms", "multi", "1", func(*testing.T) resolver.Policy { return digestPolicy() }, "", []entryOption{withPlatforms("linux/s390x")}, nil, resolver.CauseNotFound},
		{"the registry refuses the credentials", "app", "1", func(*testing.T) resolver.Policy { return digestPolicy() }, "u:wrong", nil, nil, resolver.CauseUnauthorized},
		{"the registry forbids the repository", "app", "1", func(*testing.T) resolver.Policy { return digestPolicy() }, "", nil, status(http.StatusForbidden), resolver.CauseUnauthorized},
		{"the registry answers 503", "app", "1", func(*testing.T) resolver.Policy { return digestPolicy() }, "", nil, status(http.StatusServiceUnavailable), resolver.CauseError},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := registrytest.New(t, registrytest.WithBearer("u", "p"))
			srv.PushImage(t, "app:1")
			srv.PushImage(t, "app:1.2.0")
			srv.PushIndex(t, "multi:1", "linux/amd64", "linux/arm64")
			login := tc.login
			if login == "" {
				login = "u:p"
			}
			tgt := setup(t, srv, tc.repo, append([]entryOption{withLogin(login)}, tc.opts...)...)
			if tc.fault != nil {
				srv.SetFault(tc.fault)
			}
			reg := prometheus.NewRegistry()
			r := resolver.New(resolver.WithMetrics(resolver.NewMetrics(reg)))
			_, err := r.Resolve(ctxFor(t, 5*time.Second), query(tgt, tc.tag, tc.policy(t)))
			if err == nil {
				t.Fatal("resolved")
			}
			if got := resolver.CauseOf(err); got != tc.want {
				t.Errorf("CauseOf(%v) = %s, want %s", err, got, tc.want)
			}
			if got := results(t, reg); len(got) != 1 || got[string(tc.want)] != 1 {
				t.Errorf("image_pin_resolutions_total by result = %v, want %s 1 (%v)", got, tc.want, err)
			}
		})
	}
}

// results reads image_pin_resolutions_total by its result label.
func results(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "image_pin_resolutions_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" {
					out[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	return out
}
