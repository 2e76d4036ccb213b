package main

import (
	"strings"

	"github.com/spf13/cobra"
)

// helpCmd is "asyncgw help [command ...]": the help of a command, as its
// --help prints it. Unlike cobra's own, it refuses a command that does not
// exist (a usage error) rather than printing the root's help.
func (c *cli) helpCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "help [command ...]",
		Short: "Help about any command",
		Long: `Help prints the help of a command, as its --help does: asyncgw help dlq
replay is asyncgw dlq replay --help.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			target, rest, err := cmd.Root().Find(args)
			if err != nil {
				return usage(cmd, err)
			}
			if len(rest) > 0 {
				return usagef(cmd, "unknown command %q", cmd.Root().Name()+" "+strings.Join(args, " "))
			}
			target.InitDefaultHelpFlag()
			target.InitDefaultVersionFlag()
			return target.Help()
		},
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			parent, rest, err := cmd.Root().Find(args)
			if err != nil || len(rest) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var out []cobra.Completion
			for _, sub := range parent.Commands() {
				if (sub.IsAvailableCommand() || sub == cmd) && strings.HasPrefix(sub.Name(), toComplete) {
					out = append(out, cobra.CompletionWithDesc(sub.Name(), sub.Short))
				}
			}
			return out, cobra.ShellCompDirectiveNoFileComp
		},
	}
}
