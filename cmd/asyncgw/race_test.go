//go:build race

package main

// raceEnabled reports whether the tests run with the race detector, so the
// binary they build gets it too.
const raceEnabled = true
