package status

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/jobs"
)

// Claim is what an Idempotency-Key already stands for, or that it is now
// claimed by the caller.
type Claim struct {
	// Claimed: the key was free and is now held for the caller's job.
	Claimed bool
	// Pending: another request with this key is still being accepted.
	Pending bool
	// Fingerprint of the request that holds the key.
	Fingerprint string
	// JobID and State of the job the key stands for (State is the job's
	// state when it was accepted, as the original 202 said).
	JobID string
	State jobs.State
}

// claimScript: KEYS idem; ARGV fingerprint, job id, lease seconds.
var claimScript = redis.NewScript(`
local v = redis.call('HMGET', KEYS[1], 's', 'fp', 'id', 'st')
if v[1] then return v end
redis.call('HSET', KEYS[1], 's', 'p', 'fp', ARGV[1], 'id', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return false
`)

// releaseScript: KEYS idem; ARGV job id. Frees a claim that is still
// pending for this job.
var releaseScript = redis.NewScript(`
local v = redis.call('HMGET', KEYS[1], 's', 'id')
if v[1] == 'p' and v[2] == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
`)

func (s *Store) idemKey(tenant, key string) string {
	sum := sha256.Sum256([]byte(key))
	return s.cfg.Prefix + ":{" + tenant + "}:idem:" + hex.EncodeToString(sum[:])
}

// ClaimIdempotencyKey claims key for a new job, or says what holds it. A
// claim becomes final when Create stores the job with IdempotencyKey set;
// until then it is pending, and it lapses after IdempotencyLease.
func (s *Store) ClaimIdempotencyKey(ctx context.Context, tenant, key, fingerprint, jobID string) (Claim, error) {
	res, err := claimScript.Run(ctx, s.rdb, []string{s.idemKey(tenant, key)},
		fingerprint, jobID, int64(s.cfg.IdempotencyLease.Seconds())).Slice()
	if errors.Is(err, redis.Nil) {
		return Claim{Claimed: true, Fingerprint: fingerprint, JobID: jobID}, nil
	}
	if err != nil {
		return Claim{}, fmt.Errorf("claim idempotency key: %w", err)
	}
	str := func(i int) string {
		if i < len(res) {
			v, _ := res[i].(string)
			return v
		}
		return ""
	}
	return Claim{Pending: str(0) == "p", Fingerprint: str(1), JobID: str(2), State: jobs.State(str(3))}, nil
}

// ReleaseIdempotencyKey frees a pending claim of jobID, after its accept
// failed.
func (s *Store) ReleaseIdempotencyKey(ctx context.Context, tenant, key, jobID string) error {
	if err := releaseScript.Run(ctx, s.rdb, []string{s.idemKey(tenant, key)}, jobID).Err(); err != nil {
		return fmt.Errorf("release idempotency key: %w", err)
	}
	return nil
}
