package jobs

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestState(t *testing.T) {
	t.Parallel()
	tests := []struct {
		s               State
		valid, terminal bool
	}{
		{StateQueued, true, false},
		{StateScheduled, true, false},
		{StateRunning, true, false},
		{StateRetrying, true, false},
		{StateSucceeded, true, true},
		{StateFailed, true, true},
		{StateDead, true, true},
		{StateCanceled, true, true},
		{"", false, false},
		{"progress", false, false},
		{"Succeeded", false, false},
		{"cancelled", false, false},
	}
	for _, tt := range tests {
		if got := tt.s.Valid(); got != tt.valid {
			t.Errorf("State(%q).Valid() = %v, want %v", tt.s, got, tt.valid)
		}
		if got := tt.s.Terminal(); got != tt.terminal {
			t.Errorf("State(%q).Terminal() = %v, want %v", tt.s, got, tt.terminal)
		}
		if got := (Event{Kind: string(tt.s)}).Terminal(); got != tt.terminal {
			t.Errorf("Event{Kind: %q}.Terminal() = %v, want %v", tt.s, got, tt.terminal)
		}
	}
}

func TestNewID(t *testing.T) {
	t.Parallel()
	const n = 4096
	seen := make(map[string]bool, n)
	// ones[i] counts the IDs in which bit i of the decoded ID is set.
	var ones [128]int
	for range n {
		id := NewID()
		if len(id) != 26 {
			t.Fatalf("NewID() = %q: %d characters, want 26", id, len(id))
		}
		if !ValidID(id) {
			t.Fatalf("ValidID(NewID()) = false for %q", id)
		}
		if seen[id] {
			t.Fatalf("NewID() repeated %q", id)
		}
		seen[id] = true
		raw, err := idEncoding.DecodeString(id)
		if err != nil || len(raw) != 16 {
			t.Fatalf("decode %q: %d bytes, %v; want 16 bytes", id, len(raw), err)
		}
		for i, c := range raw {
			for bit := range 8 {
				ones[i*8+bit] += int(c >> bit & 1)
			}
		}
	}
	// Every one of the 128 bits varies like a coin: an ID carries at least
	// 122 random bits. (With 4096 IDs a fair bit lands outside 40–60% with
	// probability below 1e-35.)
	random := 0
	for _, c := range ones {
		if c > n*40/100 && c < n*60/100 {
			random++
		}
	}
	if random < 122 {
		t.Fatalf("only %d of 128 ID bits look random; want at least 122", random)
	}
}

func TestValidID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want bool
	}{
		{"abcdefghijklmnopqrstuvwxyz", true},
		{"234567abcdefghijklmnopqrst", true},
		{"", false},
		{"abcdefghijklmnopqrstuvwxy", false},   // 25
		{"abcdefghijklmnopqrstuvwxyza", false}, // 27
		{"Abcdefghijklmnopqrstuvwxyz", false},  // upper case
		{"0bcdefghijklmnopqrstuvwxyz", false},  // not in the alphabet
		{"1bcdefghijklmnopqrstuvwxyz", false},
		{"8bcdefghijklmnopqrstuvwxyz", false},
		{"abcdefghijklmnopqrstuvwxy-", false},
		{"abcdefghijklmnopqrstuvwxy/", false},
		{"abcdefghijklmnopqrstuvwx\x00z", false},
		{"abcdefghijklmnopqrstuvwxé", false}, // 26 bytes, not 26 letters
		{strings.Repeat("a", 26), true},
	}
	for _, tt := range tests {
		if got := ValidID(tt.in); got != tt.want {
			t.Errorf("ValidID(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestValidName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want bool
	}{
		{"default", true},
		{"Acme-Corp_2.eu", true},
		{"a", true},
		{strings.Repeat("x", 64), true},
		{strings.Repeat("x", 65), false},
		{"", false},
		{"with space", false},
		{"tab\t", false},
		{"brace{", false},
		{"brace}", false},
		{"colon:x", false},
		{"slash/x", false},
		{"star*", false},
		{"new\nline", false},
		{"nul\x00", false},
		{"ünï", false},
	}
	for _, tt := range tests {
		if got := ValidName(tt.in); got != tt.want {
			t.Errorf("ValidName(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestDurationJSON(t *testing.T) {
	t.Parallel()
	for _, d := range []time.Duration{0, time.Nanosecond, 1500 * time.Millisecond, 90 * time.Minute, -time.Second} {
		b, err := json.Marshal(Duration(d))
		if err != nil {
			t.Fatalf("Marshal(%s): %v", d, err)
		}
		if want := `"` + d.String() + `"`; string(b) != want {
			t.Errorf("Marshal(%s) = %s, want %s", d, b, want)
		}
		var got Duration
		if err := json.Unmarshal(b, &got); err != nil || time.Duration(got) != d {
			t.Errorf("Unmarshal(%s) = %s, %v; want %s", b, time.Duration(got), err, d)
		}
	}
	for _, in := range []string{`5`, `"5"`, `"soon"`, `{}`, `"1s "`, `""`} {
		var d Duration
		if err := json.Unmarshal([]byte(in), &d); err == nil {
			t.Errorf("Unmarshal(%s) = %s, want an error", in, time.Duration(d))
		}
	}
}

func TestRequestJSON(t *testing.T) {
	t.Parallel()
	req := Request{
		Timeout: Duration(30 * time.Second),
		Backoff: Backoff{Base: Duration(time.Second), Max: Duration(5 * time.Minute)},
	}
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"timeout":"30s","backoff":{"base":"1s","max":"5m0s"}}`; string(b) != want {
		t.Fatalf("Marshal = %s, want %s", b, want)
	}
	var got Request
	if err := json.Unmarshal(b, &got); err != nil || got.Timeout != req.Timeout || !reflect.DeepEqual(got.Backoff, req.Backoff) {
		t.Fatalf("round trip = %+v, %v; want %+v", got, err, req)
	}
}

func TestValidOrderingKey(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		key  string
		want bool
	}{
		{"account-42", true},
		{"a", true},
		{"acct 42/eur:~!", true},
		{strings.Repeat("k", MaxOrderingKeyLen), true},
		{"", false},
		{strings.Repeat("k", MaxOrderingKeyLen+1), false},
		{"tab\there", false},
		{"new\nline", false},
		{"del\x7f", false},
		{"naïve", false},
	} {
		if got := ValidOrderingKey(tt.key); got != tt.want {
			t.Errorf("ValidOrderingKey(%q) = %v, want %v", tt.key, got, tt.want)
		}
	}
}
