package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/image-pin/image-pin-webhook/internal/cli"
)

// dispatch decides, before the server's flags are parsed, what the command
// line asks for: a subcommand, the version, the help, or serving (serve
// true, with code unused). A first argument that is neither a flag nor a
// subcommand is a mistake (exit 2), never a server started with the flags
// that follow it ignored. fs holds the server's flags, for the help.
func dispatch(ctx context.Context, args []string, fs *flag.FlagSet, version string, stdout, stderr io.Writer) (code int, serve bool) {
	if len(args) == 0 {
		return 0, true
	}
	switch first := args[0]; {
	case first == "version" || first == "--version" || first == "-version":
		cli.WriteVersion(stdout, version)
		return cli.ExitOK, false
	case first == "help" || first == "--help" || first == "-help" || first == "-h":
		writeHelp(stdout, fs)
		return cli.ExitOK, false
	case cli.IsCommand(first):
		return cli.Run(ctx, args, stdout, stderr), false
	case !strings.HasPrefix(first, "-"):
		cli.UnknownCommand(stderr, args)
		return cli.ExitUsage, false
	}
	return 0, true
}

// writeHelp prints the subcommands, then the server's flags.
func writeHelp(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, cli.Usage, "\nServer flags:\n")
	out := fs.Output()
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(out)
}

// checkPositional refuses what flag parsing left over: the server takes no
// arguments (image-pin-webhook --port 9443 chek).
func checkPositional(fs *flag.FlagSet, stderr io.Writer) int {
	if fs.NArg() == 0 {
		return 0
	}
	fmt.Fprintf(stderr, "image-pin-webhook: unexpected argument %q: the server takes flags only, subcommands come first\n\n%s", fs.Arg(0), cli.Usage)
	return cli.ExitUsage
}
