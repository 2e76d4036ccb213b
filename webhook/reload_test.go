package webhook

import (
	"testing"
	"time"
)

// TestReload: tenants, secrets and events change on Reload; the queue, the
// policy and the timeout keep their running values; an invalid
// configuration is refused and the running one kept.
func TestReload(t *testing.T) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	w, err := New(Config{Queue: "hooks", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	const url = "https://hooks.example.com/in"
	if _, _, err := w.Callback("acme", url); err == nil {
		t.Fatal("acme has no secret yet, but its callback was taken")
	}
	err = w.Reload(Config{Queue: "other", Timeout: time.Minute, Policy: Policy{AllowHTTP: true},
		Tenants: map[string]Tenant{"acme": {Secrets: []string{secret}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := w.Callback("acme", url); err != nil {
		t.Errorf("after the reload acme's callback was refused: %v", err)
	}
	if _, _, err := w.Callback("acme", "http://hooks.example.com/in"); err == nil {
		t.Errorf("allow_http took effect on reload; it needs a restart")
	}
	if st := w.settings(); w.Queue() != "hooks" || st.cfg.Timeout != 5*time.Second {
		t.Errorf("queue %q, timeout %s: want the running hooks and 5s", w.Queue(), st.cfg.Timeout)
	}
	if err := w.Reload(Config{Tenants: map[string]Tenant{"acme": {Secrets: []string{"not-a-secret"}}}}); err == nil {
		t.Fatal("an invalid secret was taken")
	}
	if _, _, err := w.Callback("acme", url); err != nil {
		t.Errorf("the refused reload changed the running configuration: %v", err)
	}
}
