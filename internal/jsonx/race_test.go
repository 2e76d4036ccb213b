//go:build race

package jsonx

// raceEnabled reports whether the tests run with the race detector, whose
// sync.Pool drops items at random (so allocations cannot be counted).
const raceEnabled = true
