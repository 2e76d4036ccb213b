package main

import (
	"context"

	"github.com/spf13/cobra"
)

// gatewayCmd is "asyncgw gateway": the HTTP gateway alone.
func (c *cli) gatewayCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "gateway",
		Short: "Run the HTTP gateway only",
		Long: `Run the HTTP gateway only: it accepts writes, serves job reads, event
streams, the admin API, /healthz and /readyz. Run as many as you need behind
a load balancer; they share nothing but Redis, so redis.url, redis.sentinel
or redis.cluster is required.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.serve(cmd.Context(), "gateway")
		},
	}
}

// workerCmd is "asyncgw worker": the workers alone.
func (c *cli) workerCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "worker",
		Short: "Run the workers only",
		Long: `Run the workers only: they run jobs against their upstreams, deliver
webhooks and drain the webhook outbox. Run as many as you need; they share
nothing but Redis, so redis.url, redis.sentinel or redis.cluster is
required.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.serve(cmd.Context(), "worker")
		},
	}
}

// serve reads the configuration and runs what name names ("all", "gateway"
// or "worker") until ctx is done.
func (c *cli) serve(ctx context.Context, name string) error {
	cfg, err := c.config()
	if err != nil {
		return err
	}
	cfg.reload = c.config // SIGHUP reads the same file with the same environment
	return serve(ctx, name, cfg, c.stderr)
}
