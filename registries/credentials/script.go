package credentials

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
)

// runScript runs an ext: script directly (no shell), with the webhook's
// environment minus the env: credentials, in its own process group, which
// is killed on every way out, so no child outlives the fetch.
//
// The error, which reaches tenants in warnings and denials, says only how
// the script ended. Its stderr is for the operator only, redacted: scripts
// print tokens there (set -x, verbose CLIs). A failure logs its exit status
// and the last stderr line at the default level (scriptFailed); the whole
// stderr goes to the debug log.
func (c *Cache) runScript(ctx context.Context, src Source, o FetchOptions) (authn.AuthConfig, error) {
	cmd := exec.CommandContext(ctx, src.Path)
	cmd.Env = withoutVars(c.environ(), o.HiddenEnv)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = scriptWaitDelay
	var stdout, stderr bytes.Buffer
	tail := &tailBuffer{max: stderrTail}
	out := &limitedBuffer{buf: &stdout, max: maxScriptOutput}
	cmd.Stdout = out
	cmd.Stderr = io.MultiWriter(&limitedBuffer{buf: &stderr, max: maxScriptOutput}, tail)
	err := cmd.Start()
	if err != nil {
		err = fmt.Errorf("credentials from %s: the credential script could not be started: %v", src, errors.Unwrap(err))
		c.scriptFailed(src, -1, err, nil)
		return authn.AuthConfig{}, err
	}
	err = cmd.Wait()
	killGroup(cmd.Process.Pid)
	if errors.Is(err, exec.ErrWaitDelay) {
		// The script exited 0 but a child it left behind held its output
		// open; the child is gone now and the output is complete.
		err = nil
	}
	if stderr.Len() > 0 {
		c.log.V(1).Info("credential script stderr", "source", src.String(), "stderr", Redact(stderr.String()))
	}
	exit := -1
	if cmd.ProcessState != nil {
		exit = cmd.ProcessState.ExitCode()
	}
	fail := func(err error) (authn.AuthConfig, error) {
		c.scriptFailed(src, exit, err, tail.b)
		return authn.AuthConfig{}, err
	}
	if ctx.Err() != nil {
		return fail(fmt.Errorf("credentials from %s: the credential script did not finish within %s", src, fetchBound(src, o)))
	}
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return fail(fmt.Errorf("credentials from %s: the credential script failed (exit %d)", src, ee.ExitCode()))
		}
		return fail(fmt.Errorf("credentials from %s: the credential script failed", src))
	}
	if out.over {
		return fail(fmt.Errorf("credentials from %s: the credential script printed more than %d KiB", src, maxScriptOutput>>10))
	}
	auth, err := parseUserPass(stdout.String(), src)
	if err != nil {
		return fail(fmt.Errorf("%w (the script must print one line user:pass)", err))
	}
	c.scripts.succeeded(src)
	return auth, nil
}

// ScriptFailure is how an ext: script last failed, for the operator: the
// log and resolve show it; warnings and denials, which reach tenants, never
// do.
type ScriptFailure struct {
	Exit   int    // the exit status; -1 when it did not exit (not started, killed)
	Cause  string // what the tenant's message says, without the source
	Stderr string // the last line of stderr, redacted and cut to 200 bytes
	at     time.Time
}

func (f ScriptFailure) String() string {
	s := fmt.Sprintf("exit %d, %s", f.Exit, f.Cause)
	if f.Exit < 0 {
		s = f.Cause
	}
	if f.Stderr == "" {
		return s + "; nothing on stderr"
	}
	return s + "; last line of stderr: " + f.Stderr
}

// LastScriptFailure returns how the ext: script of src last failed, when
// its last run failed.
func (c *Cache) LastScriptFailure(src Source) (ScriptFailure, bool) {
	c.scripts.mu.Lock()
	defer c.scripts.mu.Unlock()
	f, ok := c.scripts.last[src]
	return f, ok
}

// scriptFailures is how each ext: script last failed, until it succeeds,
// and when each script and cause was last logged.
type scriptFailures struct {
	mu     sync.Mutex
	last   map[Source]ScriptFailure
	logged map[scriptCause]time.Time
}

type scriptCause struct {
	src   Source
	cause string
}

func newScriptFailures() scriptFailures {
	return scriptFailures{last: map[Source]ScriptFailure{}, logged: map[scriptCause]time.Time{}}
}

func (s *scriptFailures) succeeded(src Source) {
	s.mu.Lock()
	delete(s.last, src)
	s.mu.Unlock()
}

// failed remembers f as src's last failure and reports whether to log it:
// at most once per scriptLogEvery per script and cause.
func (s *scriptFailures) failed(src Source, f ScriptFailure) bool {
	key := scriptCause{src: src, cause: f.Cause}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last[src] = f
	last, seen := s.logged[key]
	if seen && f.at.Sub(last) < scriptLogEvery {
		return false
	}
	if len(s.logged) >= maxScriptLogKeys {
		for k, t := range s.logged {
			if f.at.Sub(t) >= scriptLogEvery {
				delete(s.logged, k)
			}
		}
	}
	s.logged[key] = f.at
	return true
}

// scriptFailed remembers how the script of src failed and logs it at the
// default level, at most once per scriptLogEvery per script and cause.
func (c *Cache) scriptFailed(src Source, exit int, err error, stderr []byte) {
	f := ScriptFailure{Exit: exit, Cause: strings.TrimPrefix(err.Error(), "credentials from "+src.String()+": "),
		Stderr: lastStderrLine(stderr, src.Path), at: c.now()}
	if c.scripts.failed(src, f) {
		c.log.Info("credential script failed", "source", src.String(), "exit", exit, "cause", f.Cause, "stderr", f.Stderr)
	}
}

func withoutVars(env, hidden []string) []string {
	if len(hidden) == 0 {
		return env
	}
	out := make([]string, 0, len(env))
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		keep := true
		for _, h := range hidden {
			if name == h {
				keep = false
				break
			}
		}
		if keep {
			out = append(out, kv)
		}
	}
	return out
}

type limitedBuffer struct {
	buf  *bytes.Buffer
	max  int
	over bool // more than max was written
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if len(p) > l.max-l.buf.Len() {
		l.over = true
	}
	if room := l.max - l.buf.Len(); room > 0 {
		if len(p) > room {
			l.buf.Write(p[:room])
		} else {
			l.buf.Write(p)
		}
	}
	return len(p), nil
}
