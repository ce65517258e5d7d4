package envtest

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/image-pin/image-pin-webhook/test/cluster"
)

// What an operator sees of report mode and of failing registries, read as
// they read it: /metrics and the log of the built binary at its default
// level.

// startObserved starts a webhook of the test's own at the default log level
// with /metrics on.
func startObserved(t *testing.T, doc string) *process {
	t.Helper()
	return startProcess(t, doc, cluster.WebhookOptions{Kubeconfig: s.kubecfg, Metrics: true})
}

// configPath is the file p reads its config from.
func (p *process) configPath(t *testing.T) string {
	t.Helper()
	args := p.Cmd.Args
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--config="); ok {
			return v
		}
		if a == "--config" && i+1 < len(args) {
			return args[i+1]
		}
	}
	t.Fatalf("no --config in %q", args)
	return ""
}

// waitForLog waits until p's log holds want.
func (p *process) waitForLog(t *testing.T, want string) string {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if log := p.out.String(); strings.Contains(log, want) {
			return log
		}
		if time.Now().After(deadline) {
			t.Fatalf("the webhook never logged %q:\n%s", want, p.out.String())
		}
	}
}

// logLine is the first line of log holding want.
func logLine(log, want string) string {
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, want) {
			return l
		}
	}
	return ""
}

func TestReportModeIsCountedAsReportedAndLogsEachWouldBePin(t *testing.T) {
	t.Parallel()
	optInNamed(t, "team-a")
	repo := uniq("report")
	push(t, s.plain, repo+":1")
	p := startObserved(t, fmt.Sprintf("policy:\n  mode: report\nregistries:\n- name: plain\n  api_url: http://%[1]s\n  prefix: %[1]s\n", s.plain.Host))
	image := s.plain.Host + "/" + repo + ":1"
	r, _ := p.post(t, review("team-a", "Pod", "CREATE", image))
	if !r.Allowed || len(r.Patch) != 0 {
		t.Fatalf("report mode: want allowed without a patch, got allowed=%v patch %s", r.Allowed, r.Patch)
	}
	metrics := p.scrape(t)
	if want := `image_pin_admissions_total{kind="Pod",operation="CREATE",outcome="reported"} 1`; !strings.Contains(metrics, want) {
		t.Errorf("/metrics lacks %s:\n%s", want, strings.Join(series(metrics, "image_pin_admissions_total"), "\n"))
	}
	line := logLine(p.waitForLog(t, "report mode: would pin"), "report mode: would pin")
	for _, want := range []string{`"container":"c0"`, `"image":"` + image + `"`, `"pin":"` + image + `@sha256:`, `"namespace":"team-a"`, `"kind":"Pod"`} {
		if !strings.Contains(line, want) {
			t.Errorf("the would-be pin's line lacks %s: %s", want, line)
		}
	}
}

func TestATagThatDoesNotExistIsNotFoundAndARegistryDownIsAnError(t *testing.T) {
	t.Parallel()
	optInNamed(t, "team-a")
	repo := uniq("causes")
	push(t, s.plain, repo+":1")
	p := startObserved(t, fmt.Sprintf(`registries:
- name: plain
  api_url: http://%[1]s
  prefix: %[1]s
- name: down
  api_url: http://127.0.0.1:1
  prefix: down.example
  on_error: ignore
`, s.plain.Host))
	p.post(t, review("team-a", "Pod", "CREATE", s.plain.Host+"/"+repo+":nosuchtag"))
	p.post(t, review("team-a", "Pod", "CREATE", "down.example/app:1"))
	metrics := p.scrape(t)
	for _, want := range []string{
		`image_pin_resolutions_total{registry="plain",result="not_found",strategy="digest"} 1`,
		`image_pin_resolutions_total{registry="down",result="error",strategy="digest"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s:\n%s", want, strings.Join(series(metrics, "image_pin_resolutions_total"), "\n"))
		}
	}
	log := p.waitForLog(t, `"image":"down.example/app:1"`)
	for image, want := range map[string][]string{
		s.plain.Host + "/" + repo + ":nosuchtag": {`"result":"not_found"`, `"entry":"plain"`},
		"down.example/app:1":                     {`"result":"error"`, `"entry":"down"`},
	} {
		line := logLine(log, `"image":"`+image+`"`)
		if !strings.Contains(line, "image not resolved") {
			t.Errorf("no failure line for %s at the default level:\n%s", image, log)
			continue
		}
		for _, w := range want {
			if !strings.Contains(line, w) {
				t.Errorf("the failure line for %s lacks %s: %s", image, w, line)
			}
		}
	}
}

func TestAReloadFailureIsLoggedNamingTheFieldWithoutAStackTrace(t *testing.T) {
	t.Parallel()
	p := startObserved(t, fmt.Sprintf("registries:\n- name: plain\n  api_url: http://%[1]s\n  prefix: %[1]s\n", s.plain.Host))
	bad := fmt.Sprintf("registries:\n- name: plain\n  api_url: http://%[1]s\n  prefix: %[1]s\n  on_error: sometimes\n", s.plain.Host)
	if err := os.WriteFile(p.configPath(t), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	line := logLine(p.waitForLog(t, "config reload failed"), "config reload failed")
	if strings.Contains(line, "stacktrace") {
		t.Errorf("the reload failure carries a stack trace: %s", line)
	}
	for _, want := range []string{"plain", "on_error", "sometimes"} {
		if !strings.Contains(line, want) {
			t.Errorf("the reload failure does not name %q: %s", want, line)
		}
	}
	if m := p.scrape(t); !strings.Contains(m, `image_pin_config_reloads_total{result="failure"}`) {
		t.Errorf("/metrics counts no failed reload")
	}
	if !strings.Contains(p.scrape(t), `image_pin_build_info{go_version="go`) {
		t.Errorf("/metrics lacks image_pin_build_info")
	}
}
