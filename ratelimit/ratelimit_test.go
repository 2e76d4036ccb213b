package ratelimit

import (
	"context"
	"math"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/internal/testutil"
)

func TestMain(m *testing.M) { redistest.Main(m) }

func TestLimitValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		limit Limit
		field string // "" when valid
	}{
		{Limit{Rate: 100, Burst: 200}, ""},
		{Limit{Rate: 0.001, Burst: 1}, ""},
		{Limit{Rate: 0, Burst: 1}, "rate"},
		{Limit{Rate: -1, Burst: 1}, "rate"},
		{Limit{Rate: math.NaN(), Burst: 1}, "rate"},
		{Limit{Rate: math.Inf(1), Burst: 1}, "rate"},
		{Limit{Rate: 1, Burst: 0}, "burst"},
		{Limit{Rate: 1, Burst: -5}, "burst"},
	}
	for _, tt := range tests {
		err := tt.limit.Validate()
		switch {
		case tt.field == "" && err != nil:
			t.Errorf("%+v: Validate() = %v, want nil", tt.limit, err)
		case tt.field != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.field+" ")):
			t.Errorf("%+v: Validate() = %v, want an error naming %s", tt.limit, err, tt.field)
		}
	}
}

func TestHeaders(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		d    Decision
		want http.Header
	}{
		{
			name: "allowed",
			d:    Decision{Allowed: true, Limit: 200, Remaining: 199, Reset: 10 * time.Millisecond},
			want: http.Header{"Ratelimit-Limit": {"200"}, "Ratelimit-Remaining": {"199"}, "Ratelimit-Reset": {"1"}},
		},
		{
			name: "allowed full",
			d:    Decision{Allowed: true, Limit: 5, Remaining: 5},
			want: http.Header{"Ratelimit-Limit": {"5"}, "Ratelimit-Remaining": {"5"}, "Ratelimit-Reset": {"0"}},
		},
		{
			name: "denied rounds up",
			d:    Decision{Limit: 3, Reset: 2*time.Second + 1, RetryAfter: time.Second + 1},
			want: http.Header{"Ratelimit-Limit": {"3"}, "Ratelimit-Remaining": {"0"}, "Ratelimit-Reset": {"3"}, "Retry-After": {"2"}},
		},
		{
			name: "denied whole seconds",
			d:    Decision{Limit: 3, Reset: 3 * time.Second, RetryAfter: time.Second},
			want: http.Header{"Ratelimit-Limit": {"3"}, "Ratelimit-Remaining": {"0"}, "Ratelimit-Reset": {"3"}, "Retry-After": {"1"}},
		},
		{
			name: "denied retry at least 1",
			d:    Decision{Limit: 100, Reset: 5 * time.Millisecond, RetryAfter: time.Microsecond},
			want: http.Header{"Ratelimit-Limit": {"100"}, "Ratelimit-Remaining": {"0"}, "Ratelimit-Reset": {"1"}, "Retry-After": {"1"}},
		},
	}
	for _, tt := range tests {
		h := http.Header{}
		Headers(h, tt.d)
		if !reflect.DeepEqual(h, tt.want) {
			t.Errorf("%s: Headers(%+v) = %v, want %v", tt.name, tt.d, h, tt.want)
		}
	}
}

// testContract checks the behaviour both limiters share, on the real clock:
// a fresh key allows Burst requests at once and then denies until a request
// has refilled; keys are independent; invalid limits fail. newLimiter
// returns a limiter with no buckets.
func testContract(t *testing.T, newLimiter func(t *testing.T) Limiter) {
	t.Run("burst then deny", func(t *testing.T) {
		t.Parallel()
		lim := newLimiter(t)
		// One request per second: nothing refills noticeably during the test.
		l := Limit{Rate: 1, Burst: 5}
		const slack = 500 * time.Millisecond
		for i := range l.Burst {
			d := allow(t, lim, "k", l)
			want := Decision{Allowed: true, Limit: 5, Remaining: 4 - i}
			if d.Allowed != want.Allowed || d.Limit != want.Limit || d.Remaining != want.Remaining || d.RetryAfter != 0 {
				t.Fatalf("request %d: %+v, want %+v", i+1, d, want)
			}
			full := time.Duration(i+1) * time.Second
			if d.Reset > full || d.Reset < full-slack {
				t.Errorf("request %d: Reset = %v, want about %v", i+1, d.Reset, full)
			}
		}
		d := allow(t, lim, "k", l)
		if d.Allowed || d.Limit != 5 || d.Remaining != 0 {
			t.Fatalf("request 6: %+v, want denied with Limit 5, Remaining 0", d)
		}
		if d.RetryAfter > time.Second || d.RetryAfter < time.Second-slack {
			t.Errorf("request 6: RetryAfter = %v, want about 1s (1/rate)", d.RetryAfter)
		}
		if d.Reset > 5*time.Second || d.Reset < 5*time.Second-slack {
			t.Errorf("request 6: Reset = %v, want about 5s", d.Reset)
		}

		// Another key has its own bucket.
		if d := allow(t, lim, "other", l); !d.Allowed || d.Remaining != 4 {
			t.Errorf("other key: %+v, want allowed with Remaining 4", d)
		}
		// A denied request used nothing up: the key is still denied, and the
		// wait has not grown.
		if d2 := allow(t, lim, "k", l); d2.Allowed || d2.RetryAfter > d.RetryAfter {
			t.Errorf("request 7: %+v, want denied with RetryAfter <= %v", d2, d.RetryAfter)
		}
	})

	t.Run("refill", func(t *testing.T) {
		t.Parallel()
		lim := newLimiter(t)
		l := Limit{Rate: 50, Burst: 2}
		// Use the bucket up; a request may refill meanwhile, so bound the loop.
		var denied Decision
		for i := 0; ; i++ {
			if i > 100 {
				t.Fatalf("no request denied after %d", i)
			}
			if d := allow(t, lim, "k", l); !d.Allowed {
				denied = d
				break
			}
		}
		if denied.RetryAfter <= 0 || denied.RetryAfter > 20*time.Millisecond {
			t.Errorf("RetryAfter = %v, want in (0, 20ms]", denied.RetryAfter)
		}
		if denied.Reset <= 20*time.Millisecond || denied.Reset > 40*time.Millisecond {
			t.Errorf("Reset = %v, want in (20ms, 40ms]", denied.Reset)
		}
		testutil.WaitFor(t, 2*time.Second, "a request to be allowed again", func() bool {
			return allow(t, lim, "k", l).Allowed
		})
	})

	t.Run("invalid limit", func(t *testing.T) {
		t.Parallel()
		lim := newLimiter(t)
		for _, l := range []Limit{{Rate: 0, Burst: 1}, {Rate: 1, Burst: 0}} {
			if _, err := lim.Allow(context.Background(), "k", l); err == nil {
				t.Errorf("Allow(%+v) = nil error, want one", l)
			}
		}
	})
}

// allow calls lim.Allow with a bounded context and fails t on error.
func allow(t testing.TB, lim Limiter, key string, l Limit) Decision {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d, err := lim.Allow(ctx, key, l)
	if err != nil {
		t.Fatalf("Allow(%q, %+v): %v", key, l, err)
	}
	return d
}
