package breaker

import (
	"errors"
	"sync"
	"testing"
	"time"
)

var errDown = errors.New("down")

func TestBreakerOpensAndRecovers(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var changes []State
	b, err := New(Config{
		Name: "test", ConsecutiveFailures: 3, OpenTimeout: 50 * time.Millisecond,
		OnChange: func(_ string, _, to State) { mu.Lock(); changes = append(changes, to); mu.Unlock() },
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	fail := func() error { calls++; return errDown }
	for i := range 3 {
		if err := b.Do(fail); !errors.Is(err, errDown) {
			t.Fatalf("call %d: %v, want the call's own error", i, err)
		}
	}
	if b.State() != Open {
		t.Fatalf("state %s after 3 consecutive failures, want open", b.State())
	}
	if err := b.Do(fail); !errors.Is(err, ErrOpen) || calls != 3 {
		t.Fatalf("open breaker: err %v after %d calls; want ErrOpen without calling", err, calls)
	}
	// After the open timeout one probe goes through; its success closes.
	deadline := time.Now().Add(5 * time.Second)
	for b.State() == Open && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if err := b.Do(func() error { return nil }); err != nil {
		t.Fatalf("probe: %v", err)
	}
	if b.State() != Closed {
		t.Fatalf("state %s after a good probe, want closed", b.State())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(changes) != 3 || changes[0] != Open || changes[1] != HalfOpen || changes[2] != Closed {
		t.Fatalf("state changes %v, want [open half-open closed]", changes)
	}
}

func TestBreakerFailureRatio(t *testing.T) {
	t.Parallel()
	b, err := New(Config{Name: "ratio", MinRequests: 10, FailureRatio: 0.5, ConsecutiveFailures: 100}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		_ = b.Do(func() error {
			if i%2 == 1 { // the ratio is checked when a call fails
				return errDown
			}
			return nil
		})
	}
	if b.State() != Open {
		t.Fatalf("state %s after half of 10 calls failed, want open", b.State())
	}
}

func TestBreakerIgnoresWhatIsNotAFailure(t *testing.T) {
	t.Parallel()
	notMine := errors.New("refused by our own rules")
	b, err := New(Config{Name: "filter", ConsecutiveFailures: 2, IsFailure: func(err error) bool { return errors.Is(err, errDown) }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if err := b.Do(func() error { return notMine }); !errors.Is(err, notMine) {
			t.Fatalf("err %v", err)
		}
	}
	if b.State() != Closed {
		t.Fatalf("state %s after errors that are not failures, want closed", b.State())
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	if _, err := New(Config{}, nil); err == nil {
		t.Error("no name: want an error")
	}
	if _, err := New(Config{Name: "x", FailureRatio: 1.5}, nil); err == nil {
		t.Error("failure ratio 1.5: want an error")
	}
}

// TestBreakerExcludesAndAllow: an excluded outcome (a call cut short, or
// not made) counts neither way, and Allow reports outcomes like Do.
func TestBreakerExcludesAndAllow(t *testing.T) {
	t.Parallel()
	errCut := errors.New("cut short")
	b, err := New(Config{Name: "test", ConsecutiveFailures: 2, OpenTimeout: time.Hour,
		IsExcluded: func(err error) bool { return errors.Is(err, errCut) }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	report := func(outcome error) {
		t.Helper()
		done, err := b.Allow()
		if err != nil {
			t.Fatalf("Allow: %v", err)
		}
		done(outcome)
	}
	report(errDown)
	for range 10 {
		report(errCut) // neither a failure nor a success
	}
	if b.State() != Closed {
		t.Fatalf("state %s after one failure and excluded outcomes, want closed", b.State())
	}
	report(errDown) // the second failure in a row: excluded ones did not reset it
	if b.State() != Open {
		t.Fatalf("state %s after two failures around excluded outcomes, want open", b.State())
	}
	if _, err := b.Allow(); !errors.Is(err, ErrOpen) {
		t.Fatalf("Allow on an open breaker: %v, want ErrOpen", err)
	}
}
