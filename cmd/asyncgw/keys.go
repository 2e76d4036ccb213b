package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/asyncgw/asyncgw/gateway"
)

// keysCmd is "asyncgw keys": API keys.
func (c *cli) keysCmd() *cobra.Command {
	keys := &cobra.Command{
		Use:   "keys",
		Short: "Make API keys",
		Args:  cobra.ArbitraryArgs,
		RunE:  groupRun("new"),
	}
	keys.AddCommand(&cobra.Command{
		Use:   "new",
		Short: "Print a fresh API key and the SHA-256 to configure for it",
		Long: `Print a fresh API key, for the client, and its SHA-256 digest, for the
configuration (auth.tenants[].keys): asyncgw never stores a key in clear.`,
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error {
			key, digest := gateway.NewKey()
			_, err := fmt.Fprintf(c.stdout, "key:    %s\nsha256: %s\n\n# in the configuration, under auth.tenants[].keys:\n#   - sha256: %q\n", key, digest, digest)
			return err
		},
	})
	return keys
}
