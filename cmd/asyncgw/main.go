// Command asyncgw runs the asyncgw gateway and its workers.
//
//	asyncgw [--config FILE]          gateway and workers in one process
//	asyncgw gateway [--config FILE]  the HTTP gateway only
//	asyncgw worker [--config FILE]   the workers only
//	asyncgw dlq list|show|replay|delete
//	                                 the dead-letter queue
//	asyncgw queues [pause|resume Q]  queue statistics; pause or resume one
//	asyncgw keys new                 a fresh API key and its digest
//	asyncgw version                  print the version
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time (-ldflags "-X main.version=…").
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "asyncgw:", err)
		os.Exit(1)
	}
}
