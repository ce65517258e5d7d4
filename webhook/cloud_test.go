package webhook_test

import (
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/image-pin/image-pin-webhook/test/cloudtest"
)

// ecrEnv is the handler with one aws: entry in front of a registry that
// accepts only tokens the local ECR endpoint issued.
func ecrEnv(t *testing.T, policy string) (*env, *cloudtest.AWS) {
	t.Helper()
	aws := cloudtest.NewAWS(t)
	aws.SetEnv(t)
	e := newEnv(t, withEntry("  credentials: aws:region=eu-west-1\n  limit: 100000\n"), withPolicy(policy))
	e.srv.SetFault(aws.Guard)
	return e, aws
}

func TestAThousandAdmissionsThroughECRShareOneToken(t *testing.T) {
	e, aws := ecrEnv(t, "policy:\n  cache_ttl: 0s\n")
	body := review(t, admissionv1.Create, "team-a", deployment(nil, e.srv.Host+"/app:1"), nil)
	want := e.pinned("REGISTRY/app:1", "app:1")
	for i := 0; i < 1000; i++ {
		r := e.admit(t, body)
		if !r.Allowed || len(r.Warnings) > 0 || !strings.Contains(string(r.Patch), want) {
			t.Fatalf("admission %d: allowed=%v warnings=%q patch=%s", i, r.Allowed, r.Warnings, r.Patch)
		}
	}
	if sts, ecr := aws.Counts(); sts != 1 || ecr != 1 {
		t.Errorf("token requests: sts=%d ecr=%d, want 1 and 1 for 1000 admissions", sts, ecr)
	}
}

func TestARefusedAWSIdentityWarnsOrDeniesAsOnErrorSaysWithoutASecret(t *testing.T) {
	for _, tc := range []struct {
		onError string
		allowed bool
	}{{"ignore", true}, {"fail", false}} {
		t.Run(tc.onError, func(t *testing.T) {
			e, aws := ecrEnv(t, "policy:\n  on_error: "+tc.onError+"\n")
			aws.Refuse(true)
			r := e.admit(t, review(t, admissionv1.Create, "team-a", deployment(nil, e.srv.Host+"/app:1"), nil))
			if r.Allowed != tc.allowed {
				t.Fatalf("allowed=%v, want %v", r.Allowed, tc.allowed)
			}
			out := strings.Join(r.Warnings, "\n")
			if r.Result != nil {
				out += "\n" + r.Result.Message
			}
			for _, want := range []string{`container "app"`, "credentials from aws:region=eu-west-1", "AssumeRoleWithWebIdentity", "AccessDenied"} {
				if !strings.Contains(out, want) {
					t.Errorf("%q does not say %q", out, want)
				}
			}
			for _, secret := range aws.Secrets() {
				if strings.Contains(out, secret) {
					t.Errorf("the response holds a secret: %q", out)
				}
			}
			if len(r.Patch) > 0 && strings.Contains(string(r.Patch), "@sha256:") {
				t.Errorf("pinned without a credential: %s", r.Patch)
			}
		})
	}
}
