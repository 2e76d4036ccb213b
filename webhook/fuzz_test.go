package webhook

import (
	"net/netip"
	"net/url"
	"strings"
	"testing"
)

// FuzzCheckURL checks what CheckURL promises of the URLs it accepts, and
// that its messages are fit to show a client.
func FuzzCheckURL(f *testing.F) {
	for _, tt := range checkURLCases {
		f.Add(tt.url, tt.policy.AllowHTTP, tt.policy.AllowPrivateNetworks)
	}
	f.Fuzz(func(t *testing.T, raw string, allowHTTP, allowPrivate bool) {
		p := Policy{AllowHTTP: allowHTTP, AllowPrivateNetworks: allowPrivate}
		err := p.CheckURL(raw)
		if err != nil {
			msg := err.Error()
			if len(msg) > 200 {
				t.Fatalf("CheckURL(%q): message of %d bytes", raw, len(msg))
			}
			for _, c := range []byte(msg) {
				if c < ' ' || c >= 0x7f {
					t.Fatalf("CheckURL(%q): message %q has a control or non-ASCII byte", raw, msg)
				}
			}
			return
		}

		u, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("CheckURL accepted %q, which url.Parse refuses: %v", raw, err)
		}
		if scheme := strings.ToLower(u.Scheme); scheme != "https" && !(allowHTTP && scheme == "http") {
			t.Fatalf("CheckURL accepted %q with scheme %q (AllowHTTP %v)", raw, u.Scheme, allowHTTP)
		}
		if u.User != nil {
			t.Fatalf("CheckURL accepted %q with user information", raw)
		}
		host := u.Hostname()
		if host == "" {
			t.Fatalf("CheckURL accepted %q without a host", raw)
		}
		if addr, err := netip.ParseAddr(host); err == nil {
			if addr.Zone() != "" {
				t.Fatalf("CheckURL accepted %q with a zone", raw)
			}
			if err := p.CheckIP(addr); err != nil {
				t.Fatalf("CheckURL accepted %q, whose host CheckIP refuses: %v", raw, err)
			}
			return
		}
		name := strings.ToLower(strings.TrimSuffix(host, "."))
		if strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789-_.") != "" {
			t.Fatalf("CheckURL accepted %q, whose host has other characters", raw)
		}
		last := name[strings.LastIndexByte(name, '.')+1:]
		if strings.Trim(last, "0123456789") == "" || strings.HasPrefix(last, "0x") && strings.Trim(last[2:], "0123456789abcdef") == "" {
			t.Fatalf("CheckURL accepted %q, whose host ends in a number", raw)
		}
		if !allowPrivate && (name == "localhost" || strings.HasSuffix(name, ".localhost")) {
			t.Fatalf("CheckURL accepted %q, a localhost name", raw)
		}
	})
}
