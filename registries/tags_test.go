package registries_test

import (
	"encoding/pem"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/image-pin/image-pin-webhook/config"
	"github.com/image-pin/image-pin-webhook/registries/imageref"
	"github.com/image-pin/image-pin-webhook/test/registrytest"
)

// A registry that pages its tag list with Link headers of its own making.
func TestTagListingsFollowOnlyLinksToAPIURLsHostOverItsScheme(t *testing.T) {
	tests := []struct {
		name    string
		link    func(srv *registrytest.Server) string // the first page's Link header
		want    []string
		wantErr string
	}{
		{
			name: "a relative link is followed",
			link: func(*registrytest.Server) string { return `</v2/app/tags/list?last=a&n=1>; rel="next"` },
			want: []string{"a", "b"},
		},
		{
			// The server speaks only TLS: a plain-HTTP request would fail.
			name: "an absolute http:// link to the same host is followed over https, as api_url says",
			link: func(srv *registrytest.Server) string {
				return fmt.Sprintf(`<http://%s/v2/app/tags/list?last=a&n=1>; rel="next"`, srv.Host)
			},
			want: []string{"a", "b"},
		},
		{
			name: "the next link is found among others",
			link: func(*registrytest.Server) string {
				return `</v2/app/tags/list?first>; rel="first", </v2/app/tags/list?last=a&n=1>; rel="next"`
			},
			want: []string{"a", "b"},
		},
		{
			name: "a link to another host is refused",
			link: func(*registrytest.Server) string {
				return `<https://elsewhere.example/v2/app/tags/list?last=a>; rel="next"`
			},
			wantErr: `leads to "elsewhere.example", not to api_url's host`,
		},
		{
			name:    "a link back to a page already listed is refused",
			link:    func(*registrytest.Server) string { return `</v2/app/tags/list?n=1>; rel="next"` },
			wantErr: "already listed",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := registrytest.New(t, registrytest.WithTLS())
			srv.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
				if !strings.HasSuffix(r.URL.Path, "/tags/list") {
					return false
				}
				w.Header().Set("Content-Type", "application/json")
				if r.URL.Query().Get("last") == "a" {
					fmt.Fprint(w, `{"name":"app","tags":["b"]}`)
					return true
				}
				w.Header().Set("Link", tc.link(srv))
				fmt.Fprint(w, `{"name":"app","tags":["a"]}`)
				return true
			})
			caPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
			doc := fmt.Sprintf("registries:\n- name: paged\n  api_url: %s\n  prefix: %s\n  ca_data: |\n    %s\n",
				srv.URL, srv.Host, strings.ReplaceAll(strings.TrimSpace(caPEM), "\n", "\n    "))
			cfg, err := config.Parse([]byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			img, _ := imageref.ParseImage(srv.Host + "/app")
			tgt, _ := cfg.Registries.Match(img, "default")
			repo, _ := tgt.Client.Repository(tgt.Repository)
			var got []string
			err = tgt.Do(ctx(t), repo, func(rt http.RoundTripper) error {
				var err error
				got, err = tgt.Client.ListTags(ctx(t), rt, repo, 1)
				return err
			})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("tags = %v, want %v", got, tc.want)
			}
		})
	}
}
