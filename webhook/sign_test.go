package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

// specSign signs as the Standard Webhooks specification describes, by
// hand: HMAC-SHA256 over "id.timestamp.body" under the decoded secret.
func specSign(secret, id string, ts int64, body string) string {
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + itoa(ts) + "." + body))
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func itoa(n int64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

func TestSignerKnownVector(t *testing.T) {
	t.Parallel()
	// The example of the specification's reference implementations.
	const (
		secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
		id     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
		body   = `{"test": 2432232314}`
		want   = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	)
	if got := specSign(secret, id, 1614265330, body); got != want {
		t.Fatalf("hand-made signature = %s, want %s", got, want)
	}
	s, err := NewSigner(secret)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Sign(id, time.Unix(1614265330, 0), []byte(body)); got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}

func TestSignerRotation(t *testing.T) {
	t.Parallel()
	newer := "whsec_" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdefghijklmnopqrstuv"))
	older := "whsec_" + base64.StdEncoding.EncodeToString([]byte("vutsrqponmlkjihgfedcba9876543210"))
	s, err := NewSigner(newer, older)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Unix(1700000000, 0)
	h := s.Headers("abc", at, []byte(`{"a":1}`))
	if h[HeaderID] != "abc" || h[HeaderTimestamp] != "1700000000" {
		t.Errorf("headers = %v", h)
	}
	want := specSign(newer, "abc", 1700000000, `{"a":1}`) + " " + specSign(older, "abc", 1700000000, `{"a":1}`)
	if h[HeaderSignature] != want {
		t.Errorf("signature = %q, want %q", h[HeaderSignature], want)
	}
}

func TestCheckSecret(t *testing.T) {
	t.Parallel()
	ok := "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 24))
	for _, s := range []string{ok, "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 64))} {
		if err := CheckSecret(s); err != nil {
			t.Errorf("CheckSecret(%q) = %v", s, err)
		}
	}
	for _, s := range []string{
		"", "whsec_", "secret", strings.TrimPrefix(ok, "whsec_"), "WHSEC_" + ok[6:], ok + "!",
		"whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 23)),
		"whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 65)),
		"whsec_" + base64.RawURLEncoding.EncodeToString([]byte("\xff\xfe\xfd0123456789abcdefghijklmnop")),
	} {
		if err := CheckSecret(s); err == nil {
			t.Errorf("CheckSecret(%q) = nil, want an error", s)
		}
	}
	if _, err := NewSigner(); err == nil {
		t.Error("NewSigner() with no secret = nil error")
	}
	if _, err := NewSigner(ok, "nope"); err == nil || !strings.Contains(err.Error(), "secret 2") {
		t.Errorf("NewSigner with a bad second secret = %v", err)
	}
}
