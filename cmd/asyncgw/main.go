// Command asyncgw runs the asyncgw gateway and its workers, and the
// operators' commands:
//
//	asyncgw [--config FILE]          gateway and workers in one process
//	asyncgw gateway [--config FILE]  the HTTP gateway only
//	asyncgw worker [--config FILE]   the workers only
//	asyncgw dlq list|show|replay|delete
//	                                 the dead-letter queue
//	asyncgw queues [pause|resume Q]  queue statistics; pause or resume one
//	asyncgw keys new                 a fresh API key and its digest
//	asyncgw version                  print the version
//	asyncgw completion SHELL         a shell completion script
//	asyncgw help [command]           the help of a command
//
// It exits with status 0 when done, 1 on a failure and 2 on a usage error.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2 // an unknown command or flag, a bad flag value, missing or extra arguments
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitStatus(err, os.Stderr))
}

// exitStatus prints err in one line on stderr, with a hint after a usage
// error, and returns the exit status it calls for.
func exitStatus(err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(stderr, "asyncgw:", err)
	var u *usageError
	if errors.As(err, &u) {
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", u.path)
		return exitUsage
	}
	return exitFailure
}
