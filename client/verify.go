package client

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Errors of Verify.
var (
	// ErrSignature: the delivery has no signature made with the secret,
	// or lacks the signature headers.
	ErrSignature = errors.New("client: webhook signature does not verify")
	// ErrTimestamp: the delivery's timestamp is further from now than the
	// tolerance (a replay of an old delivery, or a clock far off).
	ErrTimestamp = errors.New("client: webhook timestamp outside the tolerance")
)

// DefaultTolerance is how far a delivery's timestamp may be from now when
// Verify is given no tolerance.
const DefaultTolerance = 5 * time.Minute

// Verify checks a webhook delivery from asyncgw, for a receiver: the
// Standard Webhooks signature of body (the raw request body, as received)
// in header (webhook-id, webhook-timestamp, webhook-signature) with secret
// (the tenant's "whsec_..." signing secret), and that its timestamp is
// within tolerance of now (DefaultTolerance when 0). During a secret
// rotation a delivery carries a signature by each secret, and either
// secret verifies it.
//
// It returns nil, ErrSignature, ErrTimestamp, or an error for a malformed
// secret. Deduplicate deliveries by their webhook-id: one may come more
// than once.
func Verify(secret string, header http.Header, body []byte, tolerance time.Duration) error {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil || len(key) == 0 {
		return errors.New("client: the webhook secret must be whsec_ followed by base64")
	}
	id := header.Get("webhook-id")
	ts := header.Get("webhook-timestamp")
	sigs := header.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return fmt.Errorf("%w: webhook-id, webhook-timestamp and webhook-signature are required", ErrSignature)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: webhook-timestamp %q is not a Unix time", ErrSignature, ts)
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	if d := time.Since(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: the delivery was signed %s from now", ErrTimestamp, d.Round(time.Second))
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + ts + "."))
	m.Write(body)
	want := m.Sum(nil)
	for sig := range strings.FieldsSeq(sigs) {
		v, b64, ok := strings.Cut(sig, ",")
		if !ok || v != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrSignature
}
