// Package cli holds the subcommands of the image-pin-webhook binary that
// users run by hand or in CI: check validates a config offline, resolve
// shows what an admission would pin. Without a subcommand the binary serves.
package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
)

// Exit codes of the subcommands.
const (
	ExitOK    = 0 // the config is valid; every image resolved or was left alone
	ExitFail  = 1 // the config is invalid, or an image failed
	ExitUsage = 2 // bad flags or arguments
)

// IsCommand reports whether name is a subcommand, so main can dispatch to
// Run before parsing the server's flags.
func IsCommand(name string) bool { return name == "check" || name == "resolve" }

// Run runs the subcommand args[0] with args[1:] and returns the exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || !IsCommand(args[0]) {
		fmt.Fprintln(stderr, "image-pin-webhook: want a subcommand: check or resolve")
		return ExitUsage
	}
	switch args[0] {
	case "check":
		return runCheck(args[1:], stdout, stderr)
	default:
		return runResolve(ctx, args[1:], stdout, stderr)
	}
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
