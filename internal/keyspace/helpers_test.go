package keyspace

import (
	"crypto/rand"
	"time"
)

var fixedNow = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

// randomID is an ID of the shape jobs.NewID makes.
func randomID() string {
	var b [26]byte
	rand.Read(b[:])
	for i := range b {
		b[i] = idAlphabet[b[i]&31]
	}
	return string(b[:])
}
