package jobs

import (
	"math"
	"testing"
	"time"
)

// expCap is min(ceil, base·2^(n-1)) computed without overflow.
func expCap(base, ceil time.Duration, n int) time.Duration {
	v := float64(base) * math.Pow(2, float64(n-1))
	if v >= float64(ceil) {
		return ceil
	}
	return time.Duration(v)
}

func TestBackoffDelayRange(t *testing.T) {
	t.Parallel()
	const samples = 64
	bases := []time.Duration{time.Nanosecond, 100 * time.Millisecond, 250 * time.Millisecond, time.Second, 3 * time.Second, 7 * time.Second, time.Hour}
	ceils := []time.Duration{time.Second, 5 * time.Minute, 24 * time.Hour, 1_000_000 * time.Hour, math.MaxInt64}
	for _, base := range bases {
		for _, ceil := range ceils {
			if base > ceil {
				continue
			}
			b := Backoff{Base: Duration(base), Max: Duration(ceil)}
			for n := 1; n <= 100; n++ {
				limit := expCap(base, ceil, n)
				var top time.Duration
				for range samples {
					d := b.Delay(n, 0)
					if d < 0 || d > limit {
						t.Fatalf("Backoff{%s, %s}.Delay(%d) = %s, want within [0, %s]", base, ceil, n, d, limit)
					}
					top = max(top, d)
				}
				// Full jitter spans the whole range: all of 64 draws land in
				// the lower half with probability 2^-64.
				if limit > 1 && top <= limit/2 {
					t.Fatalf("Backoff{%s, %s}.Delay(%d): %d draws all at most %s, want some above half of %s",
						base, ceil, n, samples, top, limit)
				}
			}
		}
	}
}

func TestBackoffDelay(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		b          Backoff
		n          int
		retryAfter time.Duration
		min, max   time.Duration
	}{
		{"defaults, first attempt", Backoff{}, 1, 0, 0, DefaultBackoffBase},
		{"defaults, late attempt", Backoff{}, 30, 0, 0, DefaultBackoffMax},
		{"n below 1 is the first", Backoff{Base: Duration(time.Second), Max: Duration(time.Minute)}, 0, 0, 0, time.Second},
		{"negative n", Backoff{Base: Duration(time.Second), Max: Duration(time.Minute)}, -5, 0, 0, time.Second},
		{"huge n", Backoff{Base: Duration(time.Second), Max: Duration(time.Minute)}, math.MaxInt, 0, 0, time.Minute},
		{"retry-after wins", Backoff{Base: Duration(time.Millisecond), Max: Duration(time.Minute)}, 1, 10 * time.Second, 10 * time.Second, 10 * time.Second},
		{"retry-after capped at max", Backoff{Base: Duration(time.Millisecond), Max: Duration(time.Minute)}, 1, time.Hour, time.Minute, time.Minute},
		{"retry-after capped at default max", Backoff{Base: Duration(time.Millisecond)}, 1, time.Hour, DefaultBackoffMax, DefaultBackoffMax},
		{"retry-after with huge n", Backoff{Base: Duration(time.Second), Max: Duration(time.Minute)}, math.MaxInt, 30 * time.Second, 30 * time.Second, time.Minute},
		{"short retry-after is a floor", Backoff{Base: Duration(time.Hour), Max: Duration(time.Hour)}, 1, time.Millisecond, time.Millisecond, time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for range 200 {
				if d := tt.b.Delay(tt.n, tt.retryAfter); d < tt.min || d > tt.max {
					t.Fatalf("Delay(%d, %s) = %s, want within [%s, %s]", tt.n, tt.retryAfter, d, tt.min, tt.max)
				}
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"1", time.Second},
		{"120", 2 * time.Minute},
		{" 30 ", 30 * time.Second},
		{"+5", 5 * time.Second}, // strconv accepts a sign
		{"-5", 0},
		{"-0", 0},
		{"1.5", 0},
		{"5s", 0},
		{"soon", 0},
		{"2147483648", 2147483648 * time.Second},
		{"2147483649", 0},
		{"99999999999999999999", 0},
		{"Sat, 21 Nov 2026 10:01:30 GMT", 90 * time.Second},
		{"Saturday, 21-Nov-26 10:01:30 GMT", 90 * time.Second}, // RFC 850
		{"Sat Nov 21 10:01:30 2026", 90 * time.Second},         // asctime
		{"Sat, 21 Nov 2026 10:00:00 GMT", 0},                   // now
		{"Sat, 21 Nov 2026 09:00:00 GMT", 0},                   // past
		{"Sat, 21 Nov 2026 10:01:30 +0000", 0},                 // not an HTTP date
		{"Sat, 21 Nov 9999 10:00:00 GMT", time.Duration(math.MaxInt64)},
	}
	for _, tt := range tests {
		if got := ParseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("ParseRetryAfter(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"", "0", "120", "-1", " 7 ", "1e3", "Sat, 21 Nov 2026 10:01:30 GMT", "Mon, 01 Jan 0001 00:00:00 GMT", "Fri, 31 Dec 9999 23:59:59 GMT"} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		d := ParseRetryAfter(v, now)
		if d < 0 {
			t.Fatalf("ParseRetryAfter(%q) = %s, negative", v, d)
		}
		if again := ParseRetryAfter(v, now); again != d {
			t.Fatalf("ParseRetryAfter(%q) = %s, then %s", v, d, again)
		}
		// Whatever the upstream asks, the delay stays within Max.
		b := Backoff{Base: Duration(time.Second), Max: Duration(time.Minute)}
		if got := b.Delay(3, d); got < 0 || got > time.Minute || got < min(d, time.Minute) {
			t.Fatalf("Delay(3, %s) = %s", d, got)
		}
	})
}

// TestBackoffSchedule: with a schedule, retry n waits Schedule[n-1] (the
// last step repeating) stretched by at most a tenth; a longer Retry-After
// wins within the longest step.
func TestBackoffSchedule(t *testing.T) {
	t.Parallel()
	b := Backoff{Schedule: []Duration{Duration(5 * time.Second), Duration(5 * time.Minute), Duration(30 * time.Minute)}}
	for _, tt := range []struct {
		n          int
		retryAfter time.Duration
		lo, hi     time.Duration
	}{
		{0, 0, 5 * time.Second, 5500 * time.Millisecond},
		{1, 0, 5 * time.Second, 5500 * time.Millisecond},
		{2, 0, 5 * time.Minute, 330 * time.Second},
		{3, 0, 30 * time.Minute, 33 * time.Minute},
		{9, 0, 30 * time.Minute, 33 * time.Minute},
		{1, time.Minute, time.Minute, time.Minute},
		{1, 5 * time.Hour, 30 * time.Minute, 30 * time.Minute},
	} {
		for range 50 {
			if d := b.Delay(tt.n, tt.retryAfter); d < tt.lo || d > tt.hi {
				t.Fatalf("Delay(%d, %s) = %s, want within [%s, %s]", tt.n, tt.retryAfter, d, tt.lo, tt.hi)
			}
		}
	}
	if d := (Backoff{Schedule: []Duration{0}}).Delay(1, 0); d != 0 {
		t.Errorf("a zero step waits %s", d)
	}
}
