package config_test

import (
	"strings"
	"testing"

	"github.com/image-pin/image-pin-webhook/config"
)

// A password written in api_url is refused, by an error that names the entry
// and the field and never repeats it, whether the URL is otherwise valid or not.
func TestAnAPIURLWithAPasswordIsRefusedWithoutPrintingIt(t *testing.T) {
	const secret = "s3cr3t-Pa55"
	for _, apiURL := range []string{
		"https://robot:" + secret + "@r1.example",
		"https://robot:" + secret + "@r1.example/v2/",
		"ftp://robot:" + secret + "@r1.example",
		"https://robot:" + secret + "@r1.example:badport",
		"https://" + secret + "@r1.example",
		"http://robot:" + secret + "%zz@r1.example",
		// A password may hold any of the characters that end a URL's
		// authority: the "@" after them is still userinfo.
		"https://robot:" + secret + "/x@r1.example",
		"https://robot:" + secret + "?x@r1.example",
		"https://robot:" + secret + "#x@r1.example",
		"https://robot:" + secret + "@x@r1.example",
		"https://robot:" + secret + "%2Fx@r1.example",
		"https://robot:" + secret + "%@r1.example",
		"https://robot:12/" + secret + "@r1.example",
		"robot:" + secret + "@r1.example",
	} {
		doc := "registries:\n- name: r1\n  api_url: " + apiURL + "\n  prefix: r1.example\n"
		_, err := config.Parse([]byte(doc))
		if err == nil {
			t.Errorf("an api_url with a password was accepted")
			continue
		}
		msg := err.Error()
		if strings.Contains(msg, secret) || strings.Contains(msg, "robot") {
			t.Errorf("the error repeats the credential: %s", strings.ReplaceAll(strings.ReplaceAll(msg, secret, "<SECRET>"), "robot", "<USER>"))
		}
		if !strings.Contains(msg, `"r1"`) || !strings.Contains(msg, "api_url") {
			t.Errorf("the error does not name the entry and the field: %s", strings.ReplaceAll(msg, secret, "<SECRET>"))
		}
	}
}
