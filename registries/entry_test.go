package registries_test

import (
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/image-pin/image-pin-webhook/registries"
	"github.com/image-pin/image-pin-webhook/registries/client"
	"github.com/image-pin/image-pin-webhook/registries/credentials"
)

func TestSetDefaultsFillsWhatIsUnsetAndValidateChangesNothing(t *testing.T) {
	u, _ := url.Parse("https://Reg.example/v2/?x=1")
	e := &registries.Entry{Config: client.Config{Name: "r", APIURL: u}, Prefix: "https://index.docker.io/team/"}
	e.SetDefaults()
	if e.APIURL.String() != "https://Reg.example" || e.Prefix != "docker.io/team" ||
		e.Limit != client.DefaultLimit || e.CredsTimeout != credentials.DefaultCredsTimeout {
		t.Fatalf("defaulted entry = %+v (api_url %s)", e, e.APIURL)
	}
	before := *e
	if errs := e.Validate(nil); len(errs) > 0 {
		t.Fatal(errs)
	}
	if !reflect.DeepEqual(before, *e) {
		t.Errorf("Validate changed the entry: %+v, was %+v", *e, before)
	}

	set := &registries.Entry{Config: client.Config{Name: "r", APIURL: u, Limit: 5, CredsTimeout: time.Minute}, Prefix: "reg.example"}
	set.SetDefaults()
	if set.Limit != 5 || set.CredsTimeout != time.Minute {
		t.Errorf("SetDefaults overrode what the entry set: limit %d, credstimeout %s", set.Limit, set.CredsTimeout)
	}
}

func TestValidateNamesTheFieldOfAnEntryItRefuses(t *testing.T) {
	tests := []struct {
		name, field string
		mod         func(e *registries.Entry)
	}{
		{"an api_url with a path", "api_url", func(e *registries.Entry) { e.APIURL, _ = url.Parse("https://reg.example/v1") }},
		{"a negative limit", "limit", func(e *registries.Entry) { e.Limit = -1 }},
		{"a negative credsexpire", "credsexpire", func(e *registries.Entry) { e.CredsExpire = -time.Second }},
		{"a bad namespaces glob", "namespaces", func(e *registries.Entry) { e.Namespaces = []string{"["} }},
		{"aws credentials on a host that is not ECR", "credentials", func(e *registries.Entry) { e.Credentials = &credentials.Source{Kind: credentials.KindAWS} }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, _ := url.Parse("https://reg.example")
			e := &registries.Entry{Config: client.Config{Name: "r", APIURL: u}, Prefix: "reg.example"}
			tc.mod(e)
			e.SetDefaults()
			errs := e.Validate(field.NewPath("registries").Index(0))
			if len(errs) != 1 || !strings.HasPrefix(errs[0].Field, "registries[0]."+tc.field) {
				t.Errorf("errors %v, want one on registries[0].%s", errs, tc.field)
			}
		})
	}
}
