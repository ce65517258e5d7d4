package resolver_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/image-pin/image-pin-webhook/registries/client"
	"github.com/image-pin/image-pin-webhook/resolver"
	"github.com/image-pin/image-pin-webhook/test/registrytest"
)

// Found by the tenant review (issue 20): a lookup that ran out of time was
// not remembered, so every admission paid for it again.
func TestALookupThatRanOutOfTimeIsHeldForItsNamespaceOnly(t *testing.T) {
	srv := registrytest.New(t)
	srv.PushImage(t, "slow:1")
	tgt := setup(t, srv, "slow")
	release := make(chan struct{})
	srv.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.Contains(r.URL.Path, "/manifests/") {
			<-release
		}
		return false
	})
	defer close(release)
	r := resolver.New(resolver.WithFailureTTL(time.Minute))
	q := query(tgt, "1", digestPolicy())
	a := client.WithTenant(ctxFor(t, 500*time.Millisecond), "team-a")
	if _, err := r.Resolve(a, q); err == nil {
		t.Fatal("want the slow lookup to run out of time")
	}
	srv.Reset()
	again := client.WithTenant(ctxFor(t, 500*time.Millisecond), "team-a")
	_, err := r.Resolve(again, q)
	if err == nil || errors.Is(err, context.DeadlineExceeded) && again.Err() != nil {
		t.Fatalf("team-a's second admission: %v, want the held failure at once", err)
	}
	if n := srv.Total(); n != 0 {
		t.Errorf("team-a's second admission made %d registry requests, want none (held)", n)
	}
	b := client.WithTenant(ctxFor(t, 300*time.Millisecond), "team-b")
	_, _ = r.Resolve(b, q)
	if n := srv.Total(); n == 0 {
		t.Errorf("team-b, which never waited on the lookup, was answered with team-a's timeout")
	}
}

func TestEveryPolicyFieldIsRefusedPastItsBoundNamingIt(t *testing.T) {
	str := func(s string) *string { return &s }
	many := make([]string, 33)
	for i := range many {
		many[i] = "x" + strings.Repeat("y", i%5)
	}
	for _, tc := range []struct {
		name  string
		w     resolver.Written
		field resolver.Field
		want  string
	}{
		{"a strategy longer than any strategy", resolver.Written{Strategy: str(strings.Repeat("s", 33))}, resolver.FieldStrategy, "at most 32"},
		{"a constraint of 257 bytes", resolver.Written{Constraint: str(">=1" + strings.Repeat(" ", 254))}, resolver.FieldConstraint, "at most 256"},
		{"allow-tags of 2 KiB", resolver.Written{AllowTags: str("regexp:" + strings.Repeat("a", 2048))}, resolver.FieldAllowTags, "at most"},
		{"33 ignore globs", resolver.Written{IgnoreTags: many}, resolver.FieldIgnoreTags, "more than 32 globs"},
		{"one glob longer than a tag", resolver.Written{IgnoreTags: []string{strings.Repeat("a", 129)}}, resolver.FieldIgnoreTags, "at most 128"},
		{"249 KiB of globs", resolver.Written{IgnoreTags: strings.Split(strings.Repeat("*-rc*,", 42500), ",")}, resolver.FieldIgnoreTags, "at most 1024"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.w.Parse()
			var fe *resolver.FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want a %s error saying %q", err, tc.field, tc.want)
			}
			if len(err.Error()) > 300 {
				t.Errorf("the message is %d bytes: it quotes the value whole", len(err.Error()))
			}
		})
	}
	ok := resolver.Written{IgnoreTags: many[:32], Constraint: str(">=1.2 <2 || ^3"), AllowTags: str(`regexp:^v?[0-9]+\.[0-9]+\.[0-9]+$`)}
	if _, err := ok.Parse(); err != nil {
		t.Errorf("fields within their bounds: %v", err)
	}
}
