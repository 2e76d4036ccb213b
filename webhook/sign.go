package webhook

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// The headers of a signed delivery (Standard Webhooks).
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// secretPrefix starts every signing secret.
const secretPrefix = "whsec_"

// CheckSecret checks the form of a signing secret: "whsec_" and the
// base64 of 24 to 64 random bytes.
func CheckSecret(s string) error {
	raw, ok := strings.CutPrefix(s, secretPrefix)
	key, err := base64.StdEncoding.DecodeString(raw)
	if !ok || err != nil || len(key) < 24 || len(key) > 64 {
		return errors.New("must be whsec_ followed by the standard base64 of 24 to 64 random bytes")
	}
	return nil
}

// Signer signs deliveries with one or more secrets. During a rotation it
// holds the new secret and the old: each delivery carries a signature by
// each, so receivers holding either one verify it.
type Signer struct {
	whs []*standardwebhooks.Webhook
}

// NewSigner returns a Signer for secrets (at least one, each as
// CheckSecret wants).
func NewSigner(secrets ...string) (*Signer, error) {
	if len(secrets) == 0 {
		return nil, errors.New("no signing secret")
	}
	s := &Signer{}
	for i, sec := range secrets {
		if err := CheckSecret(sec); err != nil {
			return nil, fmt.Errorf("secret %d: %w", i+1, err)
		}
		wh, err := standardwebhooks.NewWebhook(sec)
		if err != nil {
			return nil, fmt.Errorf("secret %d: %w", i+1, err)
		}
		s.whs = append(s.whs, wh)
	}
	return s, nil
}

// Sign returns the webhook-signature value for a delivery: "v1,<base64>"
// per secret, separated by spaces.
func (s *Signer) Sign(id string, at time.Time, body []byte) string {
	sigs := make([]string, 0, len(s.whs))
	for _, wh := range s.whs {
		sig, _ := wh.Sign(id, at, body) // signing with a decoded key cannot fail
		sigs = append(sigs, sig)
	}
	return strings.Join(sigs, " ")
}

// Headers returns the three signature headers for a delivery sent at at.
func (s *Signer) Headers(id string, at time.Time, body []byte) map[string]string {
	return map[string]string{
		HeaderID:        id,
		HeaderTimestamp: strconv.FormatInt(at.Unix(), 10),
		HeaderSignature: s.Sign(id, at, body),
	}
}
