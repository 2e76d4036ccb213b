package webhook

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/jobs"
)

const (
	secretA = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	secretB = "whsec_MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0"
)

func TestCallback(t *testing.T) {
	t.Parallel()
	w, err := New(Config{
		Secrets: []string{secretA},
		Tenants: map[string]Tenant{
			"acme":   {URL: "https://hooks.acme.example/in", Events: []jobs.State{jobs.StateDead}},
			"globex": {Secrets: []string{secretB}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		tenant, requested string
		url               string
		events            []jobs.State
		err               string
	}{
		{"acme", "", "https://hooks.acme.example/in", []jobs.State{jobs.StateDead}, ""},
		{"acme", "https://other.example/x", "https://other.example/x", []jobs.State{jobs.StateDead}, ""},
		{"globex", "", "", nil, ""},
		{"globex", "https://g.example/", "https://g.example/", DefaultEvents(), ""},
		{"initech", "https://i.example/", "https://i.example/", DefaultEvents(), ""},
		{"acme", "http://hooks.acme.example/in", "", nil, "https"},
		{"acme", "https://u:p@hooks.acme.example/", "", nil, "user"},
		{"acme", "https://10.0.0.1/", "", nil, "10.0.0.1"},
	}
	for _, tt := range tests {
		url, events, err := w.Callback(tt.tenant, tt.requested)
		if tt.err != "" {
			var ce *CallbackError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Callback(%q, %q) error = %v, want a CallbackError about %q", tt.tenant, tt.requested, err, tt.err)
			}
			continue
		}
		if err != nil || url != tt.url || !slices.Equal(events, tt.events) {
			t.Errorf("Callback(%q, %q) = %q, %v, %v; want %q, %v", tt.tenant, tt.requested, url, events, err, tt.url, tt.events)
		}
	}

	unsigned, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := unsigned.Callback("acme", "https://a.example/"); err == nil || !strings.Contains(err.Error(), "signing secret") {
		t.Errorf("a callback without any secret = %v, want refused", err)
	}
	if url, _, err := unsigned.Callback("acme", ""); url != "" || err != nil {
		t.Errorf("no callback asked, none configured = %q, %v", url, err)
	}
}

func TestNewRefuses(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		cfg  Config
		want string
	}{
		{Config{Secrets: []string{"nope"}}, "webhooks.secrets"},
		{Config{Queue: "a b"}, "webhooks.queue"},
		{Config{Events: []jobs.State{"done"}}, "webhooks.events"},
		{Config{Schedule: []time.Duration{-time.Second}}, "retry_schedule[0]"},
		{Config{Timeout: time.Hour}, "webhooks.timeout"},
		{Config{Tenants: map[string]Tenant{"acme": {URL: "https://a.example/"}}}, "needs a webhook secret"},
		{Config{Secrets: []string{secretA}, Tenants: map[string]Tenant{"acme": {URL: "ftp://a.example/"}}}, "webhook_url"},
		{Config{Tenants: map[string]Tenant{"acme": {Secrets: []string{"whsec_x"}}}}, "tenant acme"},
	} {
		if _, err := New(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%+v) = %v, want an error about %q", tt.cfg, err, tt.want)
		}
	}
}

func TestDeliveryID(t *testing.T) {
	t.Parallel()
	a := DeliveryID("acme", "job1", 3)
	if !jobs.ValidID(a) || a != DeliveryID("acme", "job1", 3) {
		t.Fatalf("DeliveryID = %q: not a stable job ID", a)
	}
	for _, b := range []string{DeliveryID("acme", "job1", 4), DeliveryID("acme", "job2", 3), DeliveryID("globex", "job1", 3)} {
		if b == a {
			t.Errorf("two events share delivery ID %s", a)
		}
	}
}
