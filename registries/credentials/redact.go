package credentials

import (
	"regexp"
	"strings"
	"unicode/utf8"
)

// secretish matches what often carries a secret in a script's output:
// user:secret pairs, bearer tokens, long base64 or hex runs, shorter
// base64 runs that end in padding, KEY=value.
var secretish = regexp.MustCompile(`(?i)([A-Za-z0-9._@+-]+:)[^\s"']+|\b(bearer|basic|token|password|secret)\b(["'=:\s]+)[^\s"']+|[A-Za-z0-9+/_-]{24,}={0,2}|[A-Za-z0-9+/]{8,}={1,2}`)

var (
	// traced is a line of set -x output: PS4 ("+ ") repeated once per
	// level of nesting (bash's "++" in command substitutions).
	traced = regexp.MustCompile(`^(\s*\++\s*)(.*)$`)
	// tracedAssignment is a traced assignment, or a command prefixed by
	// one: everything after its "=" may be the value (dash and busybox do
	// not quote a value holding spaces).
	// busybox quotes the whole word: export 'TOKEN=…'.
	tracedAssignment = regexp.MustCompile(`^((?:(?:export|local|readonly|declare|typeset)\s+(?:-\w+\s+)*)?['"]?[A-Za-z_][A-Za-z0-9_]*=)`)
	// tracedPrint is a traced printf or echo: its arguments are what the
	// script prints, which for a credential script is the credential.
	tracedPrint = regexp.MustCompile(`^(printf|echo|print)(\s|$)`)
	// sensitiveAssignment is NAME=value where NAME says it holds a secret.
	sensitiveAssignment = regexp.MustCompile(`(?i)\b([A-Za-z0-9_]*(?:pass|pw|pwd|token|secret|key|auth|cred|session|signature)[A-Za-z0-9_]*=)('[^']*'|"[^"]*"|\S+)`)
	// secretFlag is a command-line flag whose value is a secret, as
	// docker login -p, --password and the like take one.
	// busybox quotes the word: '--password=…'.
	secretFlag = regexp.MustCompile(`(?i)((?:^|[\s'"])(?:-p|-P|--password|--pass|--passwd|--token|--secret|--access-token|--identity-token|--registry-token|--auth)(?:=|\s+))('[^']*'|"[^"]*"|\S+)`)
)

// redacted replaces what is hidden.
const redacted = "[redacted]"

// Redact hides what looks like a secret in s, line by line: user:secret
// pairs, Authorization headers, tokens and long base64 runs, values of
// variables named like secrets, the values of password and token flags,
// and in set -x traces (sh, bash, busybox) every assigned value and the
// arguments of printf and echo.
func Redact(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = redactLine(l)
	}
	return strings.Join(lines, "\n")
}

func redactLine(l string) string {
	if m := traced.FindStringSubmatch(l); m != nil {
		prefix, body := m[1], m[2]
		if a := tracedAssignment.FindString(body); a != "" {
			return prefix + a + redacted
		}
		if p := tracedPrint.FindStringSubmatch(body); p != nil {
			return prefix + p[1] + " " + redacted
		}
	}
	l = sensitiveAssignment.ReplaceAllString(l, "${1}"+redacted)
	l = secretFlag.ReplaceAllString(l, "${1}"+redacted)
	return secretish.ReplaceAllStringFunc(l, func(m string) string {
		if strings.Contains(m, redacted) {
			return m
		}
		sub := secretish.FindStringSubmatch(m)
		switch {
		case sub[1] != "":
			return sub[1] + redacted
		case sub[2] != "":
			return sub[2] + sub[3] + redacted
		}
		return redacted
	})
}

// maxLoggedStderr bounds the stderr line a failed script's log line holds.
const maxLoggedStderr = 200

// lastStderrLine is the last non-empty line of a script's stderr,
// redacted, without control characters, and cut to maxLoggedStderr bytes
// (after redaction, so no cut leaves a secret's head unrecognised). The
// script's own path, which shells put before their messages, is kept
// whole: a long one would look like a base64 run.
func lastStderrLine(b []byte, script string) string {
	s := strings.TrimRight(string(b), " \t\r\n")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	s = strings.TrimSpace(s)
	if script != "" {
		parts := strings.Split(s, script)
		for i, p := range parts {
			parts[i] = Redact(p)
		}
		s = strings.Join(parts, script)
	} else {
		s = Redact(s)
	}
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			return ' '
		}
		return r
	}, s)
	if len(s) <= maxLoggedStderr {
		return s
	}
	const ellipsis = "…"
	n := maxLoggedStderr - len(ellipsis)
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + ellipsis
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	b   []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	if len(p) >= t.max {
		t.b = append(t.b[:0], p[len(p)-t.max:]...)
		return len(p), nil
	}
	if over := len(t.b) + len(p) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	t.b = append(t.b, p...)
	return len(p), nil
}
