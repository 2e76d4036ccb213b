package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestCompletion: asyncgw completion SHELL prints a script for each shell,
// and the completions the scripts ask asyncgw for name its commands and
// flags.
func TestCompletion(t *testing.T) {
	t.Parallel()
	for shell, want := range map[string]string{
		"bash":       "# bash completion V2 for asyncgw",
		"zsh":        "#compdef asyncgw",
		"fish":       "# fish completion for asyncgw",
		"powershell": "Register-ArgumentCompleter -CommandName 'asyncgw'",
	} {
		stdout, stderr, code := runBin(t, nil, "completion", shell)
		if code != 0 || stderr != "" || !strings.Contains(stdout, want) {
			t.Errorf("completion %s: exit %d, stderr %q, no %q in\n%.300s", shell, code, stderr, want, stdout)
		}
	}

	// What every script runs: asyncgw __complete WORDS... with the word
	// being completed last. The answer is one candidate a line, then
	// ":directive".
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{""}, []string{"alerts", "completion", "dlq", "gateway", "help", "keys", "queues", "version", "worker"}},
		{[]string{"dlq", ""}, []string{"delete", "list", "replay", "show"}},
		{[]string{"--config", "x.yaml", "dlq", "re"}, []string{"replay"}},
		{[]string{"queues", ""}, []string{"pause", "resume"}},
		{[]string{"help", "dlq", "s"}, []string{"show"}},
		{[]string{"dlq", "list", "--q"}, []string{"--queue"}},
		{[]string{"dlq", "replay", "--dr"}, []string{"--dry-run"}},
		{[]string{"dlq", "--js"}, []string{"--json"}},
		// --config completes YAML files (directive 8: filter by extension).
		{[]string{"dlq", "list", "--config", ""}, []string{"yaml", "yml"}},
	} {
		stdout, _, code := runBin(t, nil, append([]string{"__complete"}, tc.args...)...)
		lines := strings.Split(strings.TrimSpace(stdout), "\n")
		var got []string
		for _, l := range lines[:len(lines)-1] {
			got = append(got, strings.SplitN(l, "\t", 2)[0])
		}
		if code != 0 || !slices.Equal(got, tc.want) {
			t.Errorf("__complete %q: exit %d, %q, want %q", tc.args, code, got, tc.want)
		}
	}
}

// TestBashCompletion sources the bash script in a real bash and completes
// through it, which runs the binary.
func TestBashCompletion(t *testing.T) {
	t.Parallel()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	// The script uses _get_comp_words_by_ref of the bash-completion
	// package; this stand-in splits the words as it does for plain words.
	script := `
_get_comp_words_by_ref() { cur=${COMP_WORDS[COMP_CWORD]}; prev=${COMP_WORDS[COMP_CWORD-1]}; words=("${COMP_WORDS[@]}"); cword=$COMP_CWORD; }
source <(asyncgw completion bash) || exit 1
complete -p asyncgw || exit 1
complete_line() {
	COMP_LINE="$1"; COMP_POINT=${#COMP_LINE}; read -ra COMP_WORDS <<<"$COMP_LINE"
	[[ $COMP_LINE == *" " ]] && COMP_WORDS+=("")
	COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMPREPLY=()
	__start_asyncgw asyncgw "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}" 2>/dev/null
	echo "$1 => ${COMPREPLY[*]}"
}
complete_line "asyncgw dlq re"
complete_line "asyncgw queues p"
complete_line "asyncgw dlq list --te"
`
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bash, "--norc", "--noprofile", "-c", script)
	cmd.Env = append(childEnv(nil), "PATH="+filepath.Dir(asyncgwBin)+string(os.PathListSeparator)+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bash: %v\n%s", err, out)
	}
	for _, want := range []string{
		"complete -o default -F __start_asyncgw asyncgw\n",
		"asyncgw dlq re => replay\n",
		"asyncgw queues p => pause\n",
		"asyncgw dlq list --te => --tenant\n",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
}
