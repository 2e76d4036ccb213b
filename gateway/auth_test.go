package gateway

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

func digest(key string) string {
	s := sha256.Sum256([]byte(key))
	return hex.EncodeToString(s[:])
}

func TestKeyringLookup(t *testing.T) {
	cfg := AuthConfig{Enabled: true, Tenants: []Tenant{
		{Name: "acme", KeySHA256: []string{digest("key-a1"), digest("key-a2")}},
		{Name: "ops", Admin: true, KeySHA256: []string{strings.ToUpper(digest("key-ops"))}},
	}}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	kr := cfg.keyring()
	tests := []struct {
		header string
		want   principal
		ok     bool
	}{
		{"Bearer key-a1", principal{tenant: "acme"}, true},
		{"bearer key-a2", principal{tenant: "acme"}, true},
		{"Bearer key-ops", principal{tenant: "ops", admin: true}, true},
		{"Bearer key-a3", principal{}, false},
		{"Basic key-a1", principal{}, false},
		{"Bearer", principal{}, false},
		{"Bearer ", principal{}, false},
		{"", principal{}, false},
		{"key-a1", principal{}, false},
	}
	for _, tt := range tests {
		got, ok := kr.lookup(tt.header)
		if ok != tt.ok || got != tt.want {
			t.Errorf("lookup(%q) = %+v, %v; want %+v, %v", tt.header, got, ok, tt.want, tt.ok)
		}
	}
}

func TestAuthConfigValidate(t *testing.T) {
	good := digest("k")
	tests := []struct {
		name string
		cfg  AuthConfig
		want string
	}{
		{"no tenants", AuthConfig{Enabled: true}, "auth.tenants"},
		{"bad name", AuthConfig{Tenants: []Tenant{{Name: "a b", KeySHA256: []string{good}}}}, "auth.tenants[0].name"},
		{"dup name", AuthConfig{Tenants: []Tenant{{Name: "a", KeySHA256: []string{good}}, {Name: "a", KeySHA256: []string{digest("x")}}}}, "auth.tenants[1].name"},
		{"no key", AuthConfig{Enabled: true, Tenants: []Tenant{{Name: "a"}}}, "auth.tenants[0].keys"},
		{"bad hex", AuthConfig{Tenants: []Tenant{{Name: "a", KeySHA256: []string{"xyz"}}}}, "auth.tenants[0].keys[0].sha256"},
		{"key twice", AuthConfig{Tenants: []Tenant{{Name: "a", KeySHA256: []string{good}}, {Name: "b", KeySHA256: []string{good}}}}, "auth.tenants[1].keys[0].sha256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.validate()
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("validate() = %v; want an error naming %s", err, tt.want)
			}
		})
	}
}

func TestNewKey(t *testing.T) {
	k1, d1 := NewKey()
	k2, _ := NewKey()
	if k1 == k2 || !strings.HasPrefix(k1, "agw_") || len(k1) < 40 {
		t.Fatalf("NewKey() = %q, %q", k1, k2)
	}
	if d1 != digest(k1) {
		t.Fatalf("digest %s is not the SHA-256 of %s", d1, k1)
	}
}
