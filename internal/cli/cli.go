// Package cli holds the subcommands of the image-pin-webhook binary that
// users run by hand or in CI: check validates a config offline, resolve
// shows what an admission would pin, doctor proves that the API server
// reaches the webhook, drift lists workloads whose pin moved. Without a
// subcommand the binary serves.
package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"runtime"
	"strings"
)

// Usage lists every subcommand; cmd/webhook adds the server's flags after
// it for help and --help.
const Usage = `Usage: image-pin-webhook [FLAG…]            serve admissions (the flags below)
       image-pin-webhook SUBCOMMAND [ARG…]

Subcommands:
  check     validate the config offline (--config FILE), as the server does at start
  resolve   resolve images as an admission in a namespace would (--config FILE IMAGE…)
  doctor    prove that the API server calls the webhook: a dry-run Pod in an
            opted-in namespace, the answer, its latency, the cause if not
  drift     workloads whose pinned digest is no longer what their tag resolves to
  version   print the version and the Go version
  help      print this text

Run "image-pin-webhook SUBCOMMAND --help" for a subcommand's flags.
`

// WriteVersion prints the binary's version and the Go version that built it.
func WriteVersion(w io.Writer, version string) {
	fmt.Fprintf(w, "image-pin-webhook %s (%s %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// Exit codes of the subcommands.
const (
	ExitOK    = 0 // the config is valid; every image resolved or was left alone
	ExitFail  = 1 // the config is invalid, or an image failed
	ExitUsage = 2 // bad flags or arguments
)

// IsCommand reports whether name is a subcommand that Run runs, so main can
// dispatch to it before parsing the server's flags. version and help are
// main's: they print its version and flags.
func IsCommand(name string) bool {
	switch name {
	case "check", "resolve", "doctor", "drift":
		return true
	}
	return false
}

// Run runs the subcommand args[0] with args[1:] and returns the exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || !IsCommand(args[0]) {
		UnknownCommand(stderr, args)
		return ExitUsage
	}
	switch args[0] {
	case "check":
		return runCheck(args[1:], stdout, stderr)
	case "resolve":
		return runResolve(ctx, args[1:], stdout, stderr)
	case "doctor":
		return runDoctor(ctx, args[1:], stdout, stderr)
	default: // drift
		return runDrift(ctx, args[1:], stdout, stderr)
	}
}

// UnknownCommand explains, with the usage, why args is not a command line
// the binary takes.
func UnknownCommand(stderr io.Writer, args []string) {
	if len(args) == 0 {
		fmt.Fprint(stderr, "image-pin-webhook: want a subcommand\n\n"+Usage)
		return
	}
	fmt.Fprintf(stderr, "image-pin-webhook: unknown subcommand %q\n\n%s", args[0], Usage)
}

// parseInterspersed parses flags that may come before, between or after
// the positional arguments (resolve IMAGE -o json), as kubectl allows.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// outputFormat checks -o.
func outputFormat(o string) (bool, error) {
	switch strings.ToLower(o) {
	case "", "text":
		return false, nil
	case "json":
		return true, nil
	}
	return false, fmt.Errorf("-o %q: want text or json", o)
}
