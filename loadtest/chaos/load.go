package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"
)

// client sends the soak's writes as a careful client would: each write
// has its own Idempotency-Key; a try that gets no answer, a 5xx or a 409
// (the first try is still being accepted) is tried again with the same
// key after a short backoff, until a 202 or another 4xx, or until retryFor
// has passed since the first try.
type client struct {
	url      string // the route's URL
	http     *http.Client
	ledger   *Ledger
	retryFor time.Duration
}

// Backoff between tries of one write: from retryMin, doubling, up to
// retryMax.
const retryMin, retryMax = 100 * time.Millisecond, time.Second

// run sends rate writes per second for d, each started on schedule
// whether or not earlier ones were answered, and returns once every write
// has its final answer or was given up. Keys are prefix-n.
func (c *client) run(ctx context.Context, prefix string, rate int, d time.Duration) {
	var wg sync.WaitGroup
	defer wg.Wait()
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	for n := 0; ; n++ {
		due := start.Add(time.Duration(n) * interval)
		if due.Sub(start) >= d {
			return
		}
		if wait := time.Until(due); wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
		e := c.ledger.add(fmt.Sprintf("%s-%07d", prefix, n))
		wg.Go(func() { c.write(ctx, e, n) })
	}
}

// write sends one write until it has its final answer.
func (c *client) write(ctx context.Context, e *Entry, n int) {
	body := fmt.Sprintf(`{"n":%d,"key":%q}`, n, e.Key)
	first := time.Now()
	backoff := retryMin
	for {
		t := Try{Start: time.Now()}
		code, id, replayed, problem := c.try(ctx, e.Key, body)
		t.End, t.Code, t.Problem = time.Now(), code, problem
		c.ledger.try(e, t, id, replayed)
		retry := code == NoAnswer || code >= 500 || code == http.StatusConflict
		if !retry {
			return
		}
		if time.Since(first) > c.retryFor || ctx.Err() != nil {
			c.ledger.giveUp(e)
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, retryMax)
	}
}

// try sends one try and returns its status code (NoAnswer for none) and,
// for a 202, the job ID and whether it was a replay; for another answer,
// the last segment of its problem's type, if any (such as
// "replica-ack-timeout"). A 202 without a job ID in its body counts as no
// answer: the client cannot follow it.
func (c *client) try(ctx context.Context, key, body string) (code int, id string, replayed bool, problem string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, strings.NewReader(body))
	if err != nil {
		return NoAnswer, "", false, ""
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	resp, err := c.http.Do(req)
	if err != nil {
		return NoAnswer, "", false, ""
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return NoAnswer, "", false, ""
	}
	if resp.StatusCode != http.StatusAccepted {
		var p struct {
			Type string `json:"type"`
		}
		_ = json.Unmarshal(b, &p)
		return resp.StatusCode, "", false, path.Base(p.Type)
	}
	var acc struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(b, &acc) != nil || acc.ID == "" {
		return NoAnswer, "", false, ""
	}
	return resp.StatusCode, acc.ID, resp.Header.Get("Idempotent-Replayed") == "true", ""
}
