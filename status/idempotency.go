package status

import (
	"crypto/sha256"
	"encoding/hex"
)

// idemKey is where an Idempotency-Key of a tenant is remembered: a hash of
// s ("d" once its job is stored; "p" for a claim an earlier version made
// before storing), fp (the request's fingerprint), id and st (the job and
// its state as first answered). Accept writes it with the job; it expires
// after IdempotencyTTL.
func (s *Store) idemKey(tenant, key string) string {
	sum := sha256.Sum256([]byte(key))
	return s.cfg.Prefix + ":{" + tenant + "}:idem:" + hex.EncodeToString(sum[:])
}
