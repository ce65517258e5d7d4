package config_test

import (
	"strings"
	"testing"

	"github.com/image-pin/image-pin-webhook/config"
)

// The cloud kinds and imagepullsecrets take no parameter, so they are
// written without a colon: YAML reads an unquoted "aws:" as a mapping. The
// quoted form and the forms with parameters keep working.
func TestCredentialKindsWithoutParametersNeedNoColon(t *testing.T) {
	const ecr = "https://000000000000.dkr.ecr.eu-west-1.amazonaws.com"
	for _, tc := range []struct {
		name, apiURL, credentials, kind string
	}{
		{"aws without a colon", ecr, "aws", "aws"},
		{"aws quoted with its colon", ecr, `"aws:"`, "aws"},
		{"aws with a region", "https://mirror.example", "aws:region=eu-west-1", "aws"},
		{"gcp without a colon", "https://europe-docker.pkg.dev", "gcp", "gcp"},
		{"gcp quoted with its colon", "https://gcr.io", `"gcp:"`, "gcp"},
		{"azure without a colon", "https://team.azurecr.io", "azure", "azure"},
		{"azure with a tenant and client", "https://team.azurecr.io", "azure:tenant=t,client=c", "azure"},
		{"imagepullsecrets without a colon", "https://ghcr.io", "imagepullsecrets", "imagepullsecrets"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := "registries:\n- name: r\n  api_url: " + tc.apiURL + "\n  prefix: r.example\n  credentials: " + tc.credentials + "\n"
			spec, err := config.Decode([]byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			if src := spec.Registries[0].Entry.Credentials; src == nil || string(src.Kind) != tc.kind {
				t.Fatalf("source %+v, want kind %s", src, tc.kind)
			}
		})
	}
}

// The unquoted colon is the mistake users make (the docs made it): the
// YAML error says how to write it.
func TestAnUnquotedCloudKindWithItsColonSaysHowToWriteIt(t *testing.T) {
	doc := "registries:\n- name: ECR\n  api_url: https://000000000000.dkr.ecr.eu-west-1.amazonaws.com\n  prefix: 000000000000.dkr.ecr.eu-west-1.amazonaws.com\n  credentials: aws:\n"
	_, err := config.Decode([]byte(doc))
	if err == nil {
		t.Fatal("credentials: aws: parsed")
	}
	if !strings.Contains(err.Error(), "write credentials: aws without the colon, or quote it") {
		t.Errorf("the error does not say how to write it: %v", err)
	}
}
