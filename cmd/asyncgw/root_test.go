package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/status"
)

// runBin runs the built binary with args in an environment without the
// test's ASYNCGW_ variables, plus env, and returns what it printed and its
// exit status.
func runBin(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, asyncgwBin, args...)
	cmd.Env = childEnv(env)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if cmd.ProcessState == nil {
		t.Fatalf("run asyncgw %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

// commandPaths walks the command tree, as asyncgw builds it, and returns
// the words of every command a user may type (the root as none).
func commandPaths(t *testing.T) [][]string {
	t.Helper()
	root := (&cli{getenv: env(nil), stdout: io.Discard, stderr: io.Discard}).rootCmd()
	var paths [][]string
	var walk func(cmd *cobra.Command, path []string)
	walk = func(cmd *cobra.Command, path []string) {
		paths = append(paths, path)
		for _, sub := range cmd.Commands() {
			if !sub.Hidden {
				walk(sub, append(slices.Clone(path), sub.Name()))
			}
		}
	}
	walk(root, nil)
	return paths
}

// TestHelpEverywhere runs --help, -h and "help" on every command and
// subcommand: each prints the command's help to stdout, nothing to stderr,
// and exits 0. A new command is covered by being in the tree.
func TestHelpEverywhere(t *testing.T) {
	t.Parallel()
	paths := commandPaths(t)
	var names []string
	for _, p := range paths {
		names = append(names, strings.Join(p, " "))
	}
	// The tree is the one cobra runs, with its own commands in it.
	for _, want := range []string{"", "gateway", "worker", "dlq", "dlq list", "dlq show", "dlq replay", "dlq delete",
		"queues", "queues pause", "queues resume", "keys", "keys new", "version", "help",
		"completion", "completion bash", "completion zsh", "completion fish", "completion powershell"} {
		if !slices.Contains(names, want) {
			t.Errorf("no command %q in the tree: %q", want, names)
		}
	}
	for _, path := range paths {
		usage := strings.Join(append([]string{"asyncgw"}, path...), " ")
		t.Run(usage, func(t *testing.T) {
			t.Parallel()
			var first string
			for _, args := range [][]string{
				append(slices.Clone(path), "--help"),
				append(slices.Clone(path), "-h"),
				append([]string{"help"}, path...),
				// Flags and arguments of the command do not get in the way.
				append(append([]string{"--config", "nowhere.yaml"}, path...), "--help"),
			} {
				stdout, stderr, code := runBin(t, nil, args...)
				if code != 0 || stderr != "" {
					t.Errorf("asyncgw %s: exit %d, stderr %q", strings.Join(args, " "), code, stderr)
				}
				if !strings.Contains(stdout, "Usage:\n  "+usage) {
					t.Errorf("asyncgw %s: no usage of %q in\n%s", strings.Join(args, " "), usage, stdout)
				}
				if first == "" {
					first = stdout
				} else if stdout != first {
					t.Errorf("asyncgw %s printed another help than --help:\n%s", strings.Join(args, " "), stdout)
				}
			}
		})
	}
}

// TestUsageErrors: a command line asyncgw cannot run exits 2 with one line
// and a hint on stderr, and nothing on stdout; a command that fails
// exits 1 with one line.
func TestUsageErrors(t *testing.T) {
	t.Parallel()
	id := "gqarwptdkwnyl7czi4lvhicj2m"
	tests := []struct {
		args []string
		msg  string // the first line, after "asyncgw: "
		hint string // the command whose --help the hint names
	}{
		{[]string{"frobnicate"}, `unknown command "frobnicate"`, "asyncgw"},
		{[]string{"dql", "list"}, `unknown command "dql" (did you mean "dlq"?)`, "asyncgw"},
		{[]string{"frobnicate", "--help"}, `unknown command "frobnicate"`, "asyncgw"},
		{[]string{"--no-such-flag"}, "unknown flag: --no-such-flag", "asyncgw"},
		{[]string{"--json", "queues"}, "unknown flag: --json", "asyncgw"},
		{[]string{"--config"}, "flag needs an argument: --config", "asyncgw"},
		{[]string{"-config", "a.yaml"}, "-config: a long flag takes two dashes: --config", "asyncgw"},
		{[]string{"dlq", "list", "-limit=5"}, "dlq list: -limit: a long flag takes two dashes: --limit", "asyncgw dlq list"},
		{[]string{"dlq", "list", "-x"}, "dlq list: unknown shorthand flag: 'x' in -x", "asyncgw dlq list"},
		{[]string{"--config", "a.yaml", "gateway", "--config", "b.yaml"}, "gateway: --config: given more than once", "asyncgw gateway"},
		{[]string{"gateway", "extra"}, `gateway: unexpected argument "extra"`, "asyncgw gateway"},
		{[]string{"worker", "extra"}, `worker: unexpected argument "extra"`, "asyncgw worker"},
		{[]string{"version", "extra"}, `version: unexpected argument "extra"`, "asyncgw version"},
		{[]string{"keys"}, "keys: missing command: new", "asyncgw keys"},
		{[]string{"keys", "old"}, `keys: unknown command "old": want new`, "asyncgw keys"},
		{[]string{"keys", "new", "x"}, `keys new: unexpected argument "x"`, "asyncgw keys new"},
		{[]string{"dlq"}, "dlq: missing command: list, show, replay or delete", "asyncgw dlq"},
		{[]string{"dlq", "purge"}, `dlq: unknown command "purge": want list, show, replay or delete`, "asyncgw dlq"},
		{[]string{"dlq", "purge", "--help"}, `dlq: unknown command "purge"`, "asyncgw dlq"},
		{[]string{"dlq", "list", "--bogus"}, "dlq list: unknown flag: --bogus", "asyncgw dlq list"},
		{[]string{"dlq", "list", "extra"}, `dlq list: unexpected argument "extra"`, "asyncgw dlq list"},
		{[]string{"dlq", "list", "--limit", "ten"}, `dlq list: --limit "ten": must be a whole number`, "asyncgw dlq list"},
		{[]string{"dlq", "list", "--limit", "0"}, "dlq list: --limit 0: must be a whole number from 1 to 1000", "asyncgw dlq list"},
		{[]string{"dlq", "list", "--since", "yesterday"}, `dlq list: --since "yesterday": must be an RFC 3339 time such as 2026-11-21T10:00:00Z`, "asyncgw dlq list"},
		{[]string{"dlq", "list", "--json", "--json"}, "dlq list: --json: given more than once", "asyncgw dlq list"},
		{[]string{"dlq", "show"}, "dlq show: missing job ID (asyncgw dlq show ID)", "asyncgw dlq show"},
		{[]string{"dlq", "show", id, id}, `dlq show: unexpected argument "` + id + `"`, "asyncgw dlq show"},
		{[]string{"dlq", "replay"}, "dlq replay: missing job ID: give one, or --all to replay every dead job that matches the filters (try --all --dry-run first)", "asyncgw dlq replay"},
		{[]string{"dlq", "replay", id, "--all"}, "dlq replay: give a job ID or --all, not both", "asyncgw dlq replay"},
		{[]string{"dlq", "replay", "--all", "--rate", "fast"}, `dlq replay: --rate "fast": must be a number`, "asyncgw dlq replay"},
		{[]string{"dlq", "delete"}, "dlq delete: missing job ID (asyncgw dlq delete ID)", "asyncgw dlq delete"},
		{[]string{"dlq", "delete", "--json", id}, "dlq delete: --json: delete has no JSON to print (the admin API answers 204 with no body)", "asyncgw dlq delete"},
		{[]string{"queues", "stop", "q"}, `queues: unknown command "stop": want pause or resume`, "asyncgw queues"},
		{[]string{"queues", "pause"}, "queues pause: missing queue name (asyncgw queues pause QUEUE)", "asyncgw queues pause"},
		{[]string{"queues", "resume", "a", "b"}, `queues resume: unexpected argument "b"`, "asyncgw queues resume"},
		{[]string{"help", "nope"}, `help: unknown command "asyncgw nope"`, "asyncgw help"},
		{[]string{"help", "dlq", "purge"}, `help: unknown command "asyncgw dlq purge"`, "asyncgw help"},
		{[]string{"completion"}, "completion: missing command: bash, zsh, fish or powershell", "asyncgw completion"},
		{[]string{"completion", "tcsh"}, `completion: unknown command "tcsh": want bash, zsh, fish or powershell`, "asyncgw completion"},
		{[]string{"completion", "bash", "extra"}, `completion bash: unknown command "extra" for "asyncgw completion bash"`, "asyncgw completion bash"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			stdout, stderr, code := runBin(t, nil, tt.args...)
			want := "asyncgw: " + tt.msg + "\nRun '" + tt.hint + " --help' for usage.\n"
			if code != exitUsage || stderr != want || stdout != "" {
				t.Errorf("exit %d, stderr\n%q\nstdout %q\nwant exit 2, stderr\n%q", code, stderr, stdout, want)
			}
		})
	}

	// Failures, not usage errors: one line, status 1.
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	for _, args := range [][]string{
		{"queues", "--config", missing},
		{"dlq", "show", id}, // no redis.url
		{"gateway", "--config", missing},
		{"dlq", "list", "--config", "testdata/unknown-key.yaml"},
	} {
		stdout, stderr, code := runBin(t, nil, args...)
		if code != exitFailure || strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "asyncgw: ") || stdout != "" {
			t.Errorf("asyncgw %s: exit %d, stderr %q, stdout %q; want exit 1 and one line", strings.Join(args, " "), code, stderr, stdout)
		}
	}
}

// TestExitStatus maps errors to exit statuses as main does.
func TestExitStatus(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args   []string
		status int
	}{
		{[]string{"version"}, 0},
		{[]string{"keys", "new"}, 0},
		{[]string{"dlq", "list", "--help"}, 0},
		{[]string{"dlq", "list", "--bogus"}, 2},
		{[]string{"dlq", "list", "--config", filepath.Join(t.TempDir(), "missing.yaml")}, 1},
	} {
		var stdout, stderr bytes.Buffer
		err := run(t.Context(), tt.args, env(nil), &stdout, &stderr)
		if got := exitStatus(err, &stderr); got != tt.status {
			t.Errorf("asyncgw %s: %v, exit status %d, want %d", strings.Join(tt.args, " "), err, got, tt.status)
		}
	}
}

// TestGlobalFlagsAnywhere: --config and --json work before and after the
// subcommand, and ASYNCGW_CONFIG stands for --config.
func TestGlobalFlagsAnywhere(t *testing.T) {
	t.Parallel()
	e := newOpsEnv(t, redistest.Shared(t))
	j := e.kill("acme", e.q, "orders", "boom", dlqT0)
	items, next, err := e.store.DeadLetters(e.ctx(), status.DLQFilter{}, "", 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := json.Marshal(map[string]any{"items": items, "next_cursor": next})
	d, err := e.store.FindDeadLetter(e.ctx(), j.ID)
	if err != nil {
		t.Fatal(err)
	}
	one, _ := json.Marshal(d)
	cfg := e.config
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{nil, []string{"--config", cfg, "dlq", "list", "--json"}, string(page)},
		{nil, []string{"dlq", "--config", cfg, "list", "--json"}, string(page)},
		{nil, []string{"dlq", "--json", "--config", cfg, "list"}, string(page)},
		{nil, []string{"dlq", "list", "--json", "--config", cfg}, string(page)},
		{nil, []string{"--config=" + cfg, "dlq", "--json", "list", "--limit=100"}, string(page)},
		{map[string]string{"ASYNCGW_CONFIG": cfg}, []string{"dlq", "list", "--json"}, string(page)},
		{nil, []string{"--config", cfg, "dlq", "--json", "show", j.ID}, string(one)},
		{nil, []string{"dlq", "show", j.ID, "--config", cfg, "--json"}, string(one)},
		{map[string]string{"ASYNCGW_CONFIG": cfg}, []string{"dlq", "--json", "show", "--", j.ID}, string(one)},
	} {
		out, err := runCLI(t, tc.env, tc.args...)
		if err != nil || out != tc.want+"\n" {
			t.Errorf("asyncgw %s: %v\n got %s\nwant %s", strings.Join(tc.args, " "), err, out, tc.want)
		}
	}
	// queues: the flags of the group apply to its subcommands.
	for _, args := range [][]string{
		{"--config", cfg, "queues", "--json", "pause", e.low},
		{"queues", "--json", "pause", "--config", cfg, e.low},
		{"queues", "pause", e.low, "--json", "--config", cfg},
	} {
		out, err := runCLI(t, nil, args...)
		var q struct {
			Name   string `json:"name"`
			Paused bool   `json:"paused"`
		}
		if err != nil || json.Unmarshal([]byte(out), &q) != nil || q.Name != e.low || !q.Paused {
			t.Errorf("asyncgw %s: %v, %q", strings.Join(args, " "), err, out)
		}
	}
}
