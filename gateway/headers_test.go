package gateway

import (
	"strings"
	"testing"
	"time"
)

func TestParseIdempotencyKey(t *testing.T) {
	long := strings.Repeat("a", MaxIdempotencyKeyLen)
	tests := []struct {
		name    string
		in      []string
		want    string
		wantErr bool
	}{
		{"absent", nil, "", false},
		{"sf-string", []string{`"8e03978e-40d5-43e8-bc93-6894a57f9324"`}, "8e03978e-40d5-43e8-bc93-6894a57f9324", false},
		{"bare token", []string{"order-42"}, "order-42", false},
		{"token with colon and slash", []string{"a:b/c"}, "a:b/c", false},
		{"escapes", []string{`"a\"b\\c"`}, `a"b\c`, false},
		{"spaces inside quotes", []string{`"a b"`}, "a b", false},
		{"surrounding spaces", []string{`  "k"  `}, "k", false},
		{"longest", []string{long}, long, false},
		{"too long", []string{long + "a"}, "", true},
		{"empty header", []string{""}, "", true},
		{"empty string", []string{`""`}, "", true},
		{"two headers", []string{"a", "b"}, "", true},
		{"unterminated", []string{`"abc`}, "", true},
		{"after quote", []string{`"abc"x`}, "", true},
		{"bad escape", []string{`"a\nb"`}, "", true},
		{"control char", []string{"\"a\x01b\""}, "", true},
		{"non-ascii", []string{`"ключ"`}, "", true},
		{"space in token", []string{"a b"}, "", true},
		{"comma in token", []string{"a,b"}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseIdempotencyKey(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("ParseIdempotencyKey(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func FuzzParseIdempotencyKey(f *testing.F) {
	for _, s := range []string{`"abc"`, "abc", `"a\"b"`, `"`, `""`, "a b", strings.Repeat("x", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		key, err := ParseIdempotencyKey([]string{v})
		if err != nil {
			return
		}
		if key == "" || len(key) > MaxIdempotencyKeyLen {
			t.Fatalf("accepted key %q of length %d", key, len(key))
		}
		for i := 0; i < len(key); i++ {
			if key[i] < 0x20 || key[i] > 0x7e {
				t.Fatalf("accepted key %q with byte %#x", key, key[i])
			}
		}
	})
}

func TestParsePreferWait(t *testing.T) {
	const limit = 30 * time.Second
	tests := []struct {
		name    string
		in      []string
		want    time.Duration
		wantErr bool
	}{
		{"absent", nil, 0, false},
		{"wait", []string{"wait=5"}, 5 * time.Second, false},
		{"capped", []string{"wait=600"}, limit, false},
		{"with others", []string{"respond-async, wait=10"}, 10 * time.Second, false},
		{"second header", []string{"return=minimal", "wait=3"}, 3 * time.Second, false},
		{"quoted", []string{`wait="7"`}, 7 * time.Second, false},
		{"case", []string{"Wait=2"}, 2 * time.Second, false},
		{"zero", []string{"wait=0"}, 0, false},
		{"other prefs only", []string{"handling=lenient"}, 0, false},
		{"negative", []string{"wait=-1"}, 0, true},
		{"not a number", []string{"wait=soon"}, 0, true},
		{"no value", []string{"wait"}, 0, true},
		{"fraction", []string{"wait=1.5"}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePreferWait(tt.in, limit)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("ParsePreferWait(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func FuzzParsePreferWait(f *testing.F) {
	for _, s := range []string{"wait=5", "respond-async, wait=10", "wait", "wait=99999999999", `wait="1"`, ";;,,="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		d, err := ParsePreferWait([]string{v}, 30*time.Second)
		if err == nil && (d < 0 || d > 30*time.Second) {
			t.Fatalf("ParsePreferWait(%q) = %v, outside [0, 30s]", v, d)
		}
	})
}

func TestCheckTopKeys(t *testing.T) {
	known := map[string]bool{"type": true, "payload": true}
	tests := []struct {
		body    string
		pointer string // "" when accepted
	}{
		{`{"type":"a","payload":{"TYPE":1,"type":2}}`, ""},
		{`{"TYPE":"a"}`, "/TYPE"},
		// Members given twice are checkJSON's to refuse (TestBodiesThatMeanTwoThings).
		{`{"type":"a","type":"b"}`, ""},
		{`{"type":"a","Payload":{}}`, "/Payload"},
		{`[1,2]`, ""},
	}
	for _, tt := range tests {
		p := checkTopKeys([]byte(tt.body), known)
		switch {
		case tt.pointer == "" && p != nil:
			t.Errorf("checkTopKeys(%s) = %+v, want nil", tt.body, p.Errors)
		case tt.pointer != "" && (p == nil || p.Status != 400 || p.Errors[0].Pointer != tt.pointer):
			t.Errorf("checkTopKeys(%s) = %+v, want 400 at %s", tt.body, p, tt.pointer)
		}
	}
}
