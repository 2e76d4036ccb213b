package main

import (
	_ "embed"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/template"

	"github.com/spf13/cobra"
)

// defaultRunbookBase is where the shipped alerts link their runbooks: the
// operations guide in the repository.
const defaultRunbookBase = "https://github.com/asyncgw/asyncgw/blob/main/docs/OPERATIONS.md"

// alertsTemplate is the source of configs/prometheus/alerts.yml, which is
// the template written with defaultRunbookBase (a test holds them equal).
// Its actions are in [[ ]], since the rules' own annotations use
// Prometheus' {{ }}.
//
//go:embed alerts.yml.tmpl
var alertsTemplate string

var alertsTmpl = template.Must(template.New("alerts.yml").Delims("[[", "]]").Option("missingkey=error").Parse(alertsTemplate))

// writeAlerts writes the Prometheus alerting rules with each runbook_url
// under runbookBase: an absolute http(s) URL of a copy of
// docs/OPERATIONS.md, to which each alert adds "#" and its section's
// anchor.
func writeAlerts(w io.Writer, runbookBase string) error {
	if err := checkRunbookBase(runbookBase); err != nil {
		return err
	}
	var b strings.Builder
	if err := alertsTmpl.Execute(&b, struct{ RunbookBase string }{runbookBase}); err != nil {
		return fmt.Errorf("write alerts: %w", err)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// checkRunbookBase accepts an absolute http(s) URL without a fragment, made
// of characters that need no quoting in YAML or in a URL.
func checkRunbookBase(base string) error {
	bad := func(why string) error {
		return fmt.Errorf("runbook base %q: %s", base, why)
	}
	for _, r := range base {
		if r <= ' ' || r >= 0x7f || strings.ContainsRune(`"'<>\^`+"`{|}", r) {
			return bad(fmt.Sprintf("%q has no place in a URL; percent-encode it", r))
		}
	}
	u, err := url.Parse(base)
	switch {
	case err != nil:
		return bad("not a URL")
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
		return bad("must be an absolute http(s) URL, such as " + defaultRunbookBase)
	case strings.Contains(base, "#"):
		return bad("must not have a #fragment: each alert adds its own")
	}
	return nil
}

// alertsCmd is "asyncgw alerts": the Prometheus alerting rules.
func (c *cli) alertsCmd() *cobra.Command {
	var base string
	cmd := &cobra.Command{
		Use:   "alerts",
		Short: "Print the Prometheus alerting rules",
		Long: `Print the Prometheus alerting rules for asyncgw (configs/prometheus/alerts.yml),
with each alert's runbook_url under --runbook-base: the address of your copy
of docs/OPERATIONS.md, to which each alert adds its section's #anchor.`,
		Example: `  asyncgw alerts > /etc/prometheus/rules/asyncgw.yml
  asyncgw alerts --runbook-base https://wiki.example.com/asyncgw/OPERATIONS.md`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkRunbookBase(base); err != nil {
				return usagef(cmd, "--runbook-base: %v", err)
			}
			return writeAlerts(c.stdout, base)
		},
	}
	cmd.Flags().StringVar(&base, "runbook-base", defaultRunbookBase, "absolute URL of docs/OPERATIONS.md that runbook links point under")
	return cmd
}
