// Command tapstack runs the tapstack user-space TCP/IP stack: it brings up
// an interface with services, pings through it, fetches URLs, runs
// simulations and benchmarks.
//
// Exit status: 0 on success, 1 when the job ran and failed (no reply, bad
// data), 2 for a usage or set-up error, which is one line naming the fix.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
)

const usage = `usage: tapstack COMMAND [flags]

commands:
  up     bring up an interface and serve on it
  get    fetch a URL over HTTP through the stack
  ping   send ICMP echo requests through the stack
  sim    transfer data between two stacks on a simulated, impaired wire
  bench  run the benchmark harness against gVisor's netstack (source tree)

Run 'tapstack COMMAND -h' for a command's flags.
`

// usageError is a mistake in how the command was called: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// setupError is an environment problem (a missing device, no permission):
// exit status 2, with the fix in the message.
type setupError struct{ err error }

func (e *setupError) Error() string { return e.err.Error() }
func (e *setupError) Unwrap() error { return e.err }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "up":
		err = cmdUp(args[1:], stdout, stderr)
	case "get":
		err = cmdGet(args[1:], stdout, stderr)
	case "sim":
		err = cmdSim(args[1:], stdout, stderr)
	case "ping":
		err = cmdPing(args[1:], stdout, stderr)
	case "bench":
		err = cmdBench(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		err = usagef("unknown command %q; run 'tapstack help'", args[0])
	}
	return exitStatus(err, stderr)
}

func exitStatus(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	if errors.Is(err, errHelp) {
		return 0
	}
	fmt.Fprintln(stderr, "tapstack:", err)
	var ue *usageError
	var se *setupError
	if errors.As(err, &ue) || errors.As(err, &se) {
		return 2
	}
	return 1
}
