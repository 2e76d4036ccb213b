package main

import (
	"context"
	"errors"
	"io"

	"github.com/spf13/cobra"
)

// cli is what the commands of one run share: the environment, where their
// output goes, and the flags every command takes.
type cli struct {
	getenv         func(string) string
	stdout, stderr io.Writer
	// configPath is --config: the configuration file ("" for
	// ASYNCGW_CONFIG, or the built-in demo).
	configPath string
	// jsonOut is --json of the dlq and queues commands.
	jsonOut bool
	// helpErr is the usage error found instead of printing a help.
	helpErr error
	// started is set once the command line is parsed and checked and a
	// command begins to run: an error before that is a usage error.
	started bool
}

const rootLong = `asyncgw turns slow synchronous HTTP writes into queued jobs: it accepts a
client's write, stores it as a job in Redis, answers 202 with the job's ID,
and workers replay the write against the upstream with retries.

Without a command, asyncgw runs the gateway and the workers in one process.

The configuration file is named by --config FILE or ASYNCGW_CONFIG;
ASYNCGW_LISTEN and ASYNCGW_REDIS_URL override the file. With no file a demo
configuration runs, on an embedded Redis.

Exit status: 0 done, 1 failed, 2 usage error (an unknown command or flag, a
bad flag value, missing or extra arguments).`

// run is the whole program: it parses args and runs the command they name,
// which returns when ctx is done (after a graceful shutdown) or on an
// error. A *usageError is a command line that could not be run.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c := &cli{getenv: getenv, stdout: stdout, stderr: stderr}
	root := c.rootCmd()
	if args == nil {
		args = []string{} // nil would make cobra read os.Args
	}
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		err = c.helpErr
	}
	var u *usageError
	if err != nil && !c.started && !errors.As(err, &u) {
		// cobra's own checks: the command line, not the command, failed.
		return usage(cmd, err)
	}
	return err
}

// rootCmd builds the command tree.
func (c *cli) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "asyncgw",
		Short: "asyncgw: slow HTTP writes as queued jobs",
		Long:  rootLong,
		Example: `  asyncgw --config asyncgw.yaml        # gateway and workers in one process
  asyncgw gateway --config asyncgw.yaml
  asyncgw dlq list --queue default
  asyncgw help dlq replay`,
		Args: subcommandArgs(""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.serve(cmd.Context(), "all")
		},
		Version: version,
		// Errors are printed by main, in one line and a hint.
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := repeatedFlag(cmd); err != nil {
				return err
			}
			c.started = true
			return nil
		},
	}
	root.SetOut(c.stdout)
	root.SetErr(c.stderr)
	root.SetVersionTemplate("asyncgw {{.Version}}\n")
	root.SetFlagErrorFunc(flagError)
	root.PersistentFlags().StringVar(&c.configPath, "config", "",
		"the YAML configuration `FILE`; defaults to $ASYNCGW_CONFIG, and without either to the demo configuration")
	_ = root.MarkPersistentFlagFilename("config", "yaml", "yml")

	root.AddCommand(c.gatewayCmd(), c.workerCmd(), c.dlqCmd(), c.queuesCmd(), c.keysCmd(), c.alertsCmd(), c.versionCmd())
	root.SetHelpCommand(c.helpCmd())
	// cobra adds these when it runs; added now, they are in the tree
	// for whoever walks it.
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	if comp, _, err := root.Find([]string{"completion"}); err == nil && comp != root {
		// Without a shell it is a usage error, not its help.
		comp.Args, comp.RunE = cobra.ArbitraryArgs, groupRun("bash, zsh, fish or powershell")
		comp.DisableSuggestions = true
	}
	help := root.HelpFunc()
	root.SetHelpFunc(func(cmd *cobra.Command, args []string) {
		// "asyncgw dlq purge --help": no such command, rather than the
		// help of dlq.
		if rest := cmd.Flags().Args(); len(rest) > 0 && cmd.HasAvailableSubCommands() {
			c.helpErr = unknownCommand(cmd, rest[0], "")
			return
		}
		help(cmd, args)
	})
	onceFlags(root)
	return root
}

// config reads the configuration that --config (or ASYNCGW_CONFIG) names.
func (c *cli) config() (*config, error) {
	return loadConfig(c.configPath, c.getenv)
}
