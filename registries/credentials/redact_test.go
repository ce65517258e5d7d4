package credentials_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/image-pin/image-pin-webhook/registries/credentials"
)

// The markers every secret in testdata/settrace/trace.sh holds, and the
// base64 of one of them as the script computes it.
var traceSecrets = []string{"S3CR3T", "cm9ib3Q6UzNDUjNULTE0"}

// A credential script run with set -x prints every assignment, every
// command and its arguments on stderr, which the operator's log shows.
// Each shell traces differently (dash does not quote values with spaces,
// bash nests ++ in command substitutions, busybox quotes whole words such
// as export 'TOKEN=…'), so the redaction is checked against what each real
// shell prints: the output recorded from dash 0.5.12, bash 5.2.15 and
// busybox 1.35.0 (testdata/settrace/*.stderr, so CI without busybox still
// checks its forms), and the shell's output here when it is installed.
func TestRedactHidesEverySecretOfRealShellsSetXTraces(t *testing.T) {
	script, err := filepath.Abs("testdata/settrace/trace.sh")
	if err != nil {
		t.Fatal(err)
	}
	for _, sh := range []struct {
		name    string
		command []string
	}{
		{"dash", []string{"dash"}},
		{"bash", []string{"bash"}},
		{"busybox", []string{"busybox", "sh"}},
	} {
		t.Run(sh.name+" as recorded", func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata/settrace", sh.name+".stderr"))
			if err != nil {
				t.Fatal(err)
			}
			checkTraceRedacted(t, string(b))
		})
		t.Run(sh.name+" as installed here", func(t *testing.T) {
			if _, err := exec.LookPath(sh.command[0]); err != nil {
				t.Skipf("%s is not installed: the recorded output is checked above", sh.command[0])
			}
			cmd := exec.Command(sh.command[0], append(sh.command[1:], script)...)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("%v: %v", sh.command, err)
			}
			checkTraceRedacted(t, stderr.String())
		})
	}
}

func checkTraceRedacted(t *testing.T, trace string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(trace), "\n")
	if len(lines) < 20 {
		t.Fatalf("only %d lines of trace:\n%s", len(lines), trace)
	}
	kept := 0
	for _, l := range lines {
		got := credentials.Redact(l)
		for _, s := range traceSecrets {
			if strings.Contains(got, s) {
				t.Errorf("%q redacted is %q: it still holds a secret", l, got)
			}
		}
		if strings.HasPrefix(got, "+ docker login") || strings.HasPrefix(got, "+ curl") {
			kept++ // the command stays readable
		}
	}
	if kept < 5 {
		t.Errorf("only %d traced commands kept their name: the redaction hides too much", kept)
	}
	if got := credentials.Redact(trace); strings.Contains(got, "S3CR3T") {
		t.Errorf("the whole trace redacted still holds a secret:\n%s", got)
	}
}

// Forms scripts print outside set -x, each hidden, and what an operator
// needs to read left alone.
func TestRedactHidesTheFormsCredentialsTakeOnStderr(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"a traced assignment", "+ PASS=hunter2", "+ PASS=[redacted]"},
		{"a traced assignment to a name that says nothing", "+ X=hunter2", "+ X=[redacted]"},
		{"a nested traced export", "++ export TOKEN=hunter2", "++ export TOKEN=[redacted]"},
		{"docker login -p", "docker login -u robot -p hunter2 r.example", "docker login -u robot -p [redacted] r.example"},
		{"docker login --password", "docker login --password hunter2 r.example", "docker login --password [redacted] r.example"},
		{"--password=", "crane auth login --password=hunter2 r.example", "crane auth login --password=[redacted] r.example"},
		{"a traced printf of user and password", "+ printf %s robot hunter2", "+ printf [redacted]"},
		{"an Authorization header", "> Authorization: Bearer hunter2", "> Authorization: Bearer [redacted]"},
		{"Basic auth", "Authorization: Basic cm9ib3Q6aHVudGVyMg==", "Authorization: Basic [redacted]"},
		{"a user:password pair", "login as robot:hunter2 failed", "login as robot:[redacted] failed"},
		{"a variable named like a secret", "REGISTRY_PW=hunter2 is wrong", "REGISTRY_PW=[redacted] is wrong"},
		{"a short padded base64 run", "got aHVudGVyMg==", "got [redacted]"},
		{"a long base64 run", "token QVdTOmV5SndZWGxzYjJGa0lqb2lZ", "token [redacted]"},
		{"the shell's not found (dash)", "/scripts/login.sh: 2: aws: not found", "/scripts/login.sh: 2: aws: not found"},
		{"the shell's not found (bash)", "/scripts/login.sh: line 2: aws: command not found", "/scripts/login.sh: line 2: aws: command not found"},
		{"the AWS CLI's error", "An error occurred (AccessDeniedException) when calling the GetAuthorizationToken operation: User is not authorized", "An error occurred (AccessDeniedException) when calling the GetAuthorizationToken operation: User is not authorized"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := credentials.Redact(tc.in); got != tc.want {
				t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// The log line holds the last line of stderr, redacted, then cut to 200
// bytes on a character boundary.
func TestTheLoggedStderrLineIsTheLastOneRedactedAndCut(t *testing.T) {
	for _, tc := range []struct{ name, stderr, want string }{
		{"the last non-empty line", "+ aws ecr get-authorization-token\n/scripts/login.sh: 2: aws: not found\n\n", "/scripts/login.sh: 2: aws: not found"},
		{"redacted", "first\n+ PASS=hunter2\n", "+ PASS=[redacted]"},
		{"without control characters", "bad \x1b[31mred\x1b[0m\r\n", "bad  [31mred [0m"},
		{"nothing", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := credentials.LastStderrLine([]byte(tc.stderr)); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	long := strings.Repeat("é", 150) // 300 bytes
	got := credentials.LastStderrLine([]byte(long))
	if len(got) > 200 || !strings.HasSuffix(got, "…") || !strings.HasPrefix(long, strings.TrimSuffix(got, "…")) {
		t.Errorf("cut to %d bytes: %q", len(got), got)
	}
}
