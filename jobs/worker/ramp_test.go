package worker

import "testing"

func TestRamp(t *testing.T) {
	t.Parallel()
	var r ramp
	// Not ramping: no cap.
	for range 100 {
		if !r.acquire() {
			t.Fatal("an idle ramp refused a call")
		}
	}
	for range 100 {
		r.release(true)
	}

	r.start(1, 8)
	if !r.acquire() {
		t.Fatal("the first call after an outage was refused")
	}
	if r.acquire() {
		t.Fatal("a second call in flight at limit 1 was allowed")
	}
	r.release(true) // limit 2
	if !r.acquire() || !r.acquire() || r.acquire() {
		t.Fatal("limit 2 should allow exactly two calls in flight")
	}
	r.release(false) // a failure halves it: limit 1
	r.drop()         // a call not made changes nothing
	if !r.acquire() || r.acquire() {
		t.Fatal("after a failure the limit should be back to 1")
	}
	for range 7 { // successes raise it to the ceiling, and the ramp ends
		r.release(true)
		if !r.acquire() {
			t.Fatal("a call was refused while the limit grew")
		}
	}
	r.release(true)
	for range 50 {
		if !r.acquire() {
			t.Fatal("the ramp did not end at the ceiling")
		}
	}
}
