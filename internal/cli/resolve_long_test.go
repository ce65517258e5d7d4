package cli_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/image-pin/image-pin-webhook/internal/cli"
)

// A reference longer than the cut the admission's messages make
// (imageref.Quote keeps 80 bytes of one over 100) is shown whole, pinned
// or failed: resolve reads the handler's decisions, not its messages.
func TestResolveShowsALongReferenceWholePinnedOrFailed(t *testing.T) {
	srv, cfg := registry(t)
	long := "team/" + strings.Repeat("a-deeply-nested-path/", 6) + "api"
	pinned := srv.Host + "/" + long + ":1.4.0@" + srv.PushImage(t, long+":1.4.0")
	srv.PushImage(t, "wrong/"+strings.Repeat("a-deeply-nested-path/", 6)+"api:1.4.0")
	tests := []struct {
		name, image       string
		code              int
		pinned, tag       string
		errorHas, leftOut []string
	}{
		{name: "pinned", image: srv.Host + "/" + long + ":1.4.0", code: cli.ExitOK, pinned: pinned, tag: "1.4.0"},
		{name: "a tag that does not exist fails under on_error: ignore",
			image: srv.Host + "/" + long + ":9.9.9", code: cli.ExitFail,
			tag: "9.9.9", errorHas: []string{"9.9.9", "; left as it is"}},
		{name: "refused credentials fail under on_error: fail",
			image: srv.Host + "/wrong/" + strings.Repeat("a-deeply-nested-path/", 6) + "api:1.4.0", code: cli.ExitFail,
			tag: "1.4.0", errorHas: []string{"401"}, leftOut: []string{"; left as it is"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.image) <= 100 {
				t.Fatalf("the reference is %d bytes, not longer than imageref.Quote's cut", len(tc.image))
			}
			code, out, errOut := run(t, "resolve", "--config", cfg, "-o", "json", tc.image)
			noSecrets(t, out, errOut)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stdout:\n%s\nstderr:\n%s", code, tc.code, out, errOut)
			}
			var rep struct {
				Images []struct {
					Image, Pinned, Tag, Error string
					Warnings                  []string
				}
			}
			if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.Images) != 1 {
				t.Fatalf("not one image in JSON (%v):\n%s", err, out)
			}
			got := rep.Images[0]
			if got.Image != tc.image || got.Pinned != tc.pinned || got.Tag != tc.tag {
				t.Errorf("image %q pinned %q tag %q, want %q, %q, %q", got.Image, got.Pinned, got.Tag, tc.image, tc.pinned, tc.tag)
			}
			// Nothing of the admission's message framing, nor its cut.
			for _, bad := range append([]string{"image-pin: ", `container "resolve"`, "…"}, tc.leftOut...) {
				if strings.Contains(got.Error, bad) || strings.Contains(strings.Join(got.Warnings, "\n"), bad) {
					t.Errorf("error %q / warnings %q hold %q", got.Error, got.Warnings, bad)
				}
			}
			for _, want := range tc.errorHas {
				if !strings.Contains(got.Error, want) {
					t.Errorf("error %q lacks %q", got.Error, want)
				}
			}
			if tc.pinned == "" && got.Error == "" {
				t.Errorf("no error for a failure: %+v", got)
			}
			// The text output says the same in full.
			_, text, _ := run(t, "resolve", "--config", cfg, tc.image)
			if tc.pinned != "" && !strings.Contains(text, "pinned:      "+tc.pinned+"\n") {
				t.Errorf("text output lacks the whole pin:\n%s", text)
			}
			if got.Error != "" && !strings.Contains(text, "error:       "+got.Error+"\n") {
				t.Errorf("text output lacks the whole error:\n%s", text)
			}
		})
	}
}
