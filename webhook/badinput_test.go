package webhook_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
)

func TestBadInputAtTheDoorGetsAClearRefusalOrAWellFormedAnswer(t *testing.T) {
	e := newEnv(t)
	host := e.srv.Host
	many := make([]string, 1000)
	for i := range many {
		many[i] = fmt.Sprintf("quay.io/x/app%d:1", i)
	}
	many[999] = host + "/app:1"
	long := host + "/" + strings.Repeat("a", 4096-len(host)-3) + ":1"
	tests := []struct {
		name      string
		body      []byte
		allowed   bool
		inMessage string
	}{
		{"a body over the size limit", append([]byte(`{"request":{"uid":"big","object":"`), bytes.Repeat([]byte("x"), 8<<20)...), false, "too large"},
		{"a body that is not JSON", []byte("<xml/>"), false, ""},
		{"a Deployment with 1,000 containers", review(t, admissionv1.Create, "team-a", deploymentOf(many...), nil), true, ""},
		{"an image reference of 4 KiB", review(t, admissionv1.Create, "team-a", deploymentOf(long), nil), true, "left as it is"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Post(e.http.URL, "application/json", bytes.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var rev admissionv1.AdmissionReview
			if err := json.NewDecoder(resp.Body).Decode(&rev); err != nil || rev.Response == nil {
				t.Fatalf("not a well-formed AdmissionReview (HTTP %s): %v", resp.Status, err)
			}
			r := rev.Response
			msg := strings.Join(r.Warnings, "\n")
			if r.Result != nil {
				msg += r.Result.Message
			}
			if r.Allowed != tc.allowed || !strings.Contains(msg, tc.inMessage) {
				t.Errorf("allowed=%v message=%.200q; want allowed=%v and %q", r.Allowed, msg, tc.allowed, tc.inMessage)
			}
		})
	}
}

func TestAThousandContainersArePinnedWithOnePatchEach(t *testing.T) {
	e := newEnv(t)
	imgs := make([]string, 1000)
	for i := range imgs {
		imgs[i] = e.srv.Host + "/app:1"
	}
	r := e.admit(t, review(t, admissionv1.Create, "team-a", deploymentOf(imgs...), nil))
	if n := len(patchOf(t, r)); n != 1001 {
		t.Errorf("%d patch operations, want 1,000 images and the annotation", n)
	}
}

// deploymentOf names containers c0, c1, … so any number fits.
func deploymentOf(images ...string) any {
	d := deployment(nil)
	for i, img := range images {
		d.Spec.Template.Spec.Containers = append(d.Spec.Template.Spec.Containers, container(fmt.Sprintf("c%d", i), img))
	}
	return d
}
