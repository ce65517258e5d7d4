package envtest

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestTheContractsMetricsAreServed(t *testing.T) {
	t.Parallel()
	// One admission of its own, so the test does not rely on others having run.
	repo := uniq("metrics")
	push(t, s.plain, repo+":1")
	c, _ := kube(t)
	if err := c.Create(ctx(t), deploy(namespace(t, true), nil, s.plain.Host+"/"+repo+":1")); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + s.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	body := string(b)
	for _, series := range []string{
		`image_pin_admissions_total{kind="Deployment",operation="CREATE",outcome="patched"}`,
		`image_pin_resolutions_total{registry="plain",result="resolved",strategy="digest"}`,
		`image_pin_resolve_duration_seconds_bucket{registry="plain",strategy="digest"`,
		`image_pin_registry_requests_total{code="200",registry="plain"}`,
		`image_pin_registry_up{registry="env"} 1`,
		`image_pin_cache_entries{cache="answers"}`,
		`image_pin_config_reloads_total{result="failure"}`,
		`image_pin_build_info{go_version="go`,
	} {
		if !strings.Contains(body, series) {
			t.Errorf("/metrics lacks %s", series)
		}
	}
}
