package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// usageError is a command line asyncgw cannot run: an unknown command or
// flag, a bad flag value, missing or extra arguments. asyncgw exits with
// status 2 and points to the command's --help.
type usageError struct {
	// path is the command's, such as "asyncgw dlq list".
	path string
	msg  string
}

func (e *usageError) Error() string { return e.msg }

// usagef is a usage error of cmd; the message starts with the command's
// name (such as "dlq list: ").
func usagef(cmd *cobra.Command, format string, a ...any) error {
	msg := fmt.Sprintf(format, a...)
	if cmd.HasParent() {
		msg = strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ") + ": " + msg
	}
	return &usageError{path: cmd.CommandPath(), msg: msg}
}

// usage turns err, found in cmd's command line, into a usage error.
func usage(cmd *cobra.Command, err error) error {
	return usagef(cmd, "%s", strings.Join(strings.Fields(err.Error()), " "))
}

// flagError words the errors of flag parsing.
func flagError(cmd *cobra.Command, err error) error {
	var unknown *pflag.NotExistError
	if errors.As(err, &unknown) {
		// -config, as Go's flag package took it.
		name, _, _ := strings.Cut(unknown.GetSpecifiedShortnames(), "=")
		if len(name) > 1 && cmd.Flags().Lookup(name) != nil {
			return usagef(cmd, "-%s: a long flag takes two dashes: --%s", name, name)
		}
	}
	var bad *pflag.InvalidValueError
	if !errors.As(err, &bad) {
		return usage(cmd, err)
	}
	f := bad.GetFlag()
	want := map[string]string{
		"int":     "a whole number",
		"float64": "a number",
		"bool":    "true or false",
	}[f.Value.Type()]
	if want == "" {
		return usage(cmd, err)
	}
	return usagef(cmd, "--%s %q: must be %s", f.Name, bad.GetValue(), want)
}

// subcommandArgs checks the arguments of a command with subcommands:
// none, or a subcommand that cobra did not find. want lists the
// subcommands in the error ("" for none).
func subcommandArgs(want string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		return unknownCommand(cmd, args[0], want)
	}
}

// unknownCommand is the usage error for name, given to cmd as a
// subcommand; it suggests the nearest one.
func unknownCommand(cmd *cobra.Command, name, want string) error {
	msg := fmt.Sprintf("unknown command %q", name)
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2
	}
	if s := cmd.SuggestionsFor(name); len(s) > 0 && !cmd.DisableSuggestions {
		msg += fmt.Sprintf(" (did you mean %q?)", s[0])
	}
	if want != "" {
		msg += ": want " + want
	}
	return usagef(cmd, "%s", msg)
}

// groupRun is the RunE of a command that only groups subcommands: run
// alone or with an unknown one, it is a usage error.
func groupRun(want string) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return usagef(cmd, "missing command: %s", want)
		}
		return unknownCommand(cmd, args[0], want)
	}
}

// noArgs checks that a command got no arguments.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef(cmd, "unexpected argument %q", args[0])
	}
	return nil
}

// oneArg checks that a command got one argument, what (such as "job ID
// (asyncgw dlq show ID)").
func oneArg(what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) == 0:
			return usagef(cmd, "missing %s", what)
		case len(args) > 1:
			return usagef(cmd, "unexpected argument %q", args[1])
		}
		return nil
	}
}

// onceValue is a flag value that counts how often it is set: a repeated
// flag is more likely a mistake than a wish for the last value, so
// repeatedFlag refuses it.
type onceValue struct {
	pflag.Value
	n int
}

func (v *onceValue) Set(s string) error {
	v.n++
	return v.Value.Set(s)
}

// onceFlags makes every flag of the tree under cmd a onceValue.
func onceFlags(cmd *cobra.Command) {
	wrap := func(f *pflag.Flag) {
		if _, ok := f.Value.(*onceValue); !ok {
			f.Value = &onceValue{Value: f.Value}
		}
	}
	cmd.PersistentFlags().VisitAll(wrap)
	cmd.LocalNonPersistentFlags().VisitAll(wrap)
	for _, sub := range cmd.Commands() {
		onceFlags(sub)
	}
}

// repeatedFlag returns a usage error for the first flag of cmd given more
// than once.
func repeatedFlag(cmd *cobra.Command) error {
	var err error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if v, ok := f.Value.(*onceValue); ok && v.n > 1 && err == nil {
			err = usagef(cmd, "--%s: given more than once", f.Name)
		}
	})
	return err
}
