package credentials_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"

	"github.com/image-pin/image-pin-webhook/registries/credentials"
	"github.com/image-pin/image-pin-webhook/registries/credentials/credtest"
)

// logLines is a logger at the default level (V(0)) that keeps each line.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		l.mu.Lock()
		l.lines = append(l.lines, args)
		l.mu.Unlock()
	}, funcr.Options{Verbosity: 0})
}

func (l *logLines) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

// The seed's ECR example, script text as written, runs through the ext:
// route with the AWS CLI on PATH (a stand-in printing what the real one
// prints) and logs in as AWS. Without the CLI, as in an image without it,
// the pipeline's base64 -d exits 0 with nothing on stdout: the tenant reads
// only that the script printed nothing, and the operator's log, at the
// default level, says the exit status and the shell's "aws: not found".
func TestTheSeedsECRScriptLogsInWithTheCLIAndWithoutItTheOperatorSeesWhy(t *testing.T) {
	const password = "ecr-" + credtest.SecretValue
	script := credtest.SeedECRScriptFile(t)
	src := credtest.Source(t, "ext:"+script)
	opts := credentials.FetchOptions{Host: "000000000000.dkr.ecr.eu-west-1.amazonaws.com", Timeout: 10 * time.Second}

	t.Run("with the AWS CLI", func(t *testing.T) {
		var log logLines
		c := credentials.New(credentials.WithEnvironment([]string{"PATH=" + credtest.StandInAWS(t, password)}), credentials.WithLogger(log.logger()))
		auth, err := c.Get(ctx(t), src, opts)
		if err != nil {
			t.Fatal(err)
		}
		if auth.Username != "AWS" || auth.Password != password {
			t.Errorf("logged in as %q, want AWS and the token's password", auth.Username)
		}
		if lines := log.all(); len(lines) != 0 {
			t.Errorf("a working script logged %q", lines)
		}
	})

	t.Run("without the AWS CLI", func(t *testing.T) {
		var log logLines
		c := credentials.New(credentials.WithEnvironment([]string{"PATH=" + credtest.SystemPath}), credentials.WithLogger(log.logger()))
		_, err := c.Get(ctx(t), src, opts)
		tenant := fmt.Sprint(err)
		t.Logf("the tenant reads: %s", tenant)
		if want := "credentials from ext:" + script + ": empty (the script must print one line user:pass)"; tenant != want {
			t.Errorf("the tenant reads %q, want %q", tenant, want)
		}
		if strings.Contains(tenant, "not found") {
			t.Errorf("the tenant's message holds the script's stderr: %q", tenant)
		}
		lines := log.all()
		if len(lines) != 1 {
			t.Fatalf("logged %d lines at the default level, want 1: %q", len(lines), lines)
		}
		t.Logf("the operator reads: %s", lines[0])
		for _, want := range []string{`"msg"="credential script failed"`, `"source"="ext:` + script + `"`, `"exit"=0`, `"cause"="empty (the script must print one line user:pass)"`, `"stderr"="` + script + `: 2: aws: not found"`} {
			if !strings.Contains(lines[0], want) {
				t.Errorf("the log line lacks %s: %s", want, lines[0])
			}
		}
		f, ok := c.LastScriptFailure(src)
		if !ok || f.Exit != 0 || !strings.HasSuffix(f.Stderr, "aws: not found") {
			t.Errorf("LastScriptFailure = %+v, %v", f, ok)
		}
	})
}

// A script that fails (exit N) logs its status and last stderr line,
// redacted, once a minute per script and cause however often it runs;
// another cause is logged at once. The tenant's message never holds stderr.
func TestAFailingScriptIsLoggedOnceAMinutePerCauseRedacted(t *testing.T) {
	exitFile := filepath.Join(t.TempDir(), "exit")
	write := func(code string) {
		if err := os.WriteFile(exitFile, []byte(code), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("3")
	script := credtest.Script(t, "set -x\nPASS="+credtest.SecretValue+"\necho throttled >&2\nREGISTRY_PW="+credtest.SecretValue+" sh -c \"exit $(cat "+exitFile+")\"")
	src := credtest.Source(t, "ext:"+script)
	var log logLines
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	c := credentials.New(credentials.WithFailureHold(0), credentials.WithLogger(log.logger()), credentials.WithClock(clock))
	opts := credentials.FetchOptions{Host: "r.example", Timeout: 5 * time.Second}
	fetch := func() string {
		t.Helper()
		_, err := c.Get(ctx(t), src, opts)
		if err == nil {
			t.Fatal("the script succeeded")
		}
		return err.Error()
	}
	for range 3 {
		if msg := fetch(); !strings.HasSuffix(msg, "the credential script failed (exit 3)") || strings.Contains(msg, "REGISTRY_PW") {
			t.Fatalf("the tenant reads %q", msg)
		}
	}
	if n := len(log.all()); n != 1 {
		t.Fatalf("3 failures within a minute logged %d lines, want 1", n)
	}
	write("4")
	fetch()
	if n := len(log.all()); n != 2 {
		t.Fatalf("a new cause logged %d lines in all, want 2", n)
	}
	advance(61 * time.Second)
	write("3")
	fetch()
	lines := log.all()
	if len(lines) != 3 {
		t.Fatalf("after a minute, %d lines in all, want 3", len(lines))
	}
	for _, l := range lines {
		if strings.Contains(l, credtest.SecretValue) {
			t.Errorf("the log holds the secret: %s", l)
		}
	}
	for i, want := range []string{`"exit"=3`, `"exit"=4`, `"exit"=3`} {
		if !strings.Contains(lines[i], want) || !strings.Contains(lines[i], `"stderr"="+ REGISTRY_PW=[redacted]"`) {
			t.Errorf("line %d lacks %s and the redacted last line: %s", i, want, lines[i])
		}
	}
}
