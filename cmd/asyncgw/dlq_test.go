package main

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/admin"
	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/jobs/submit"
	"github.com/asyncgw/asyncgw/status"
)

// opsEnv is a Redis with a key prefix and two queues of a test's own, a
// configuration file naming them, and the store and client to seed it.
type opsEnv struct {
	t      *testing.T
	srv    *redistest.Server
	store  *status.Store
	client *submit.Client
	// q and low are the configured queues, hooks the webhook queue.
	q, low, hooks string
	prefix        string
	config        string
}

// newOpsEnv sets up an opsEnv on srv.
func newOpsEnv(t *testing.T, srv *redistest.Server) *opsEnv {
	t.Helper()
	e := &opsEnv{
		t: t, srv: srv, q: redistest.Queue(t, "default"), low: redistest.Queue(t, "low"),
		hooks: redistest.Queue(t, "webhooks"),
	}
	prefix := redistest.Prefix(t)
	e.prefix = prefix
	rdb := srv.Client(t)
	var err error
	if e.store, err = status.New(status.Config{Prefix: prefix}, rdb); err != nil {
		t.Fatalf("status.New: %v", err)
	}
	e.client = submit.New(rdb, e.store, nil)
	e.config = e.writeConfig(t, "redis:\n  url: "+srv.URL()+"\n  prefix: "+prefix+"\n")
	return e
}

// writeConfig writes a configuration with the env's queues and redis
// section and returns its path.
func (e *opsEnv) writeConfig(t *testing.T, redisSection string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "asyncgw.yaml")
	yaml := redisSection + "queues: {" + e.q + ": 3, " + e.low + ": 1}\nwebhooks:\n  queue: " + e.hooks + "\n"
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// ctx is a context that ends with the test or after a minute.
func (e *opsEnv) ctx() context.Context {
	ctx, cancel := context.WithTimeout(e.t.Context(), time.Minute)
	e.t.Cleanup(cancel)
	return ctx
}

// kill stores a job of tenant in queue with type typ, ended dead at diedAt
// with error msg, as a worker leaves it when its attempts are used up.
func (e *opsEnv) kill(tenant, queue, typ, msg string, diedAt time.Time) *jobs.Job {
	e.t.Helper()
	created := diedAt.Add(-time.Minute).UTC()
	j := &jobs.Job{
		ID: jobs.NewID(), Type: typ, State: jobs.StateQueued, Queue: queue,
		MaxAttempts: 3, CreatedAt: created, UpdatedAt: created, Tenant: tenant,
	}
	if err := e.store.Create(e.ctx(), j, &jobs.Request{Method: "POST", URL: "http://127.0.0.1:9/x", Timeout: jobs.Duration(time.Second)}); err != nil {
		e.t.Fatalf("Create: %v", err)
	}
	got, err := e.store.Update(e.ctx(), tenant, j.ID, func(j *jobs.Job) error {
		at := diedAt.UTC()
		j.State, j.Attempt, j.StartedAt, j.FinishedAt, j.UpdatedAt, j.Error = jobs.StateDead, 3, &at, &at, at, msg
		j.Result = &jobs.Result{Status: 503, Headers: map[string]string{"Content-Type": "application/json"}, Body: json.RawMessage(`{"error": "busy"}`)}
		return nil
	})
	if err != nil {
		e.t.Fatalf("Update to dead: %v", err)
	}
	return got
}

// run runs asyncgw with args and --config (after the first two words), and
// an environment of env.
func (e *opsEnv) run(env map[string]string, args ...string) (string, error) {
	e.t.Helper()
	n := min(len(args), 2)
	return runCLI(e.t, env, slices.Concat(args[:n], []string{"--config", e.config}, args[n:])...)
}

// runCLI runs asyncgw with args in an environment of env only. It checks
// that an error is one line and comes with no output.
func runCLI(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	err := run(ctx, args, func(k string) string { return env[k] }, &stdout, &stderr)
	if err != nil {
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("asyncgw %s: error of more than one line: %q", strings.Join(args, " "), err)
		}
		if stdout.Len() > 0 {
			t.Errorf("asyncgw %s failed (%v) but printed %q", strings.Join(args, " "), err, stdout.String())
		}
	}
	if stderr.Len() > 0 && err == nil && !slices.Contains(args, "--help") {
		t.Errorf("asyncgw %s: stderr %q", strings.Join(args, " "), stderr.String())
	}
	return stdout.String(), err
}

// ok runs asyncgw with args and fails the test on an error.
func (e *opsEnv) ok(args ...string) string {
	e.t.Helper()
	out, err := e.run(nil, args...)
	if err != nil {
		e.t.Fatalf("asyncgw %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// fails runs asyncgw with args and requires an error containing want.
func (e *opsEnv) fails(want string, args ...string) {
	e.t.Helper()
	_, err := e.run(nil, args...)
	if err == nil || !strings.Contains(err.Error(), want) {
		e.t.Errorf("asyncgw %s: error %v, want one containing %q", strings.Join(args, " "), err, want)
	}
}

// job reads a job's record.
func (e *opsEnv) job(j *jobs.Job) *jobs.Job {
	e.t.Helper()
	got, err := e.store.Get(e.ctx(), j.Tenant, j.ID)
	if err != nil {
		e.t.Fatalf("Get %s: %v", j.ID, err)
	}
	return got
}

// tableIDs returns the first column of a table's rows, without its header,
// up to a blank line or a "more:" line.
func tableIDs(t *testing.T, out string) []string {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "ID ") {
		t.Fatalf("no table in %q", out)
	}
	var ids []string
	for _, l := range lines[1:] {
		if l == "" || strings.HasPrefix(l, "more: ") {
			break
		}
		ids = append(ids, strings.Fields(l)[0])
	}
	return ids
}

// cliDLQPage is the answer of "dlq list --json".
type cliDLQPage struct {
	Items      []status.DeadLetter `json:"items"`
	NextCursor string              `json:"next_cursor"`
}

var dlqT0 = time.Date(2026, 11, 21, 10, 30, 0, 0, time.UTC)

func TestDLQList(t *testing.T) {
	t.Parallel()
	e := newOpsEnv(t, redistest.Shared(t))
	if out := e.ok("dlq", "list"); out != "the dead-letter queue is empty\n" {
		t.Errorf("empty list: %q", out)
	}
	long := "upstream answered 503 Service Unavailable: " + strings.Repeat("x", 200)
	a := e.kill("acme", e.q, "orders", long, dlqT0)
	b := e.kill("beta", e.low, "refunds", "dial tcp 10.0.0.1:443:\tconnection refused\nsecond line", dlqT0.Add(time.Minute))
	c := e.kill("acme", e.q, "orders", "upstream answered 500", dlqT0.Add(2*time.Minute))

	out := e.ok("dlq", "list")
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("list: %d lines, want a header and 3 rows:\n%s", len(lines), out)
	}
	header := regexp.MustCompile(`^ID +TENANT +QUEUE +TYPE +ATTEMPTS +DEAD AT +ERROR$`)
	if !header.MatchString(lines[0]) {
		t.Errorf("header %q", lines[0])
	}
	for i, want := range []struct {
		j           *jobs.Job
		tenant, at  string
		errorColumn string
	}{
		{a, "acme", "2026-11-21T10:30:00Z", "upstream answered 503 Service Unavailable: xxxxxxxxxxxxxxxx…"},
		{b, "beta", "2026-11-21T10:31:00Z", "dial tcp 10.0.0.1:443: connection refused second line"},
		{c, "acme", "2026-11-21T10:32:00Z", "upstream answered 500"},
	} {
		cols := regexp.MustCompile(` {2,}`).Split(lines[i+1], 7)
		wantCols := []string{want.j.ID, want.tenant, want.j.Queue, want.j.Type, "3/3", want.at, want.errorColumn}
		if !slices.Equal(cols, wantCols) {
			t.Errorf("row %d:\n got %q\nwant %q", i, cols, wantCols)
		}
	}
	if cols := regexp.MustCompile(` {2,}`).Split(lines[1], 7); len(cols) != 7 || len([]rune(cols[6])) != 60 {
		t.Errorf("long error not cut to 60 characters: %q", lines[1])
	}
	// Columns line up.
	at := strings.Index(lines[0], "DEAD AT")
	for _, l := range lines[1:] {
		if !strings.HasPrefix(l[at:], "2026-11-21T") {
			t.Errorf("row %q: DEAD AT not under its header", l)
		}
	}

	// Filters, as the admin API has them.
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--queue", e.low}, []string{b.ID}},
		{[]string{"--tenant", "acme", "--type", "orders"}, []string{a.ID, c.ID}},
		{[]string{"--type", "refunds"}, []string{b.ID}},
		{[]string{"--error", "REFUSED"}, []string{b.ID}},
		{[]string{"--since", "2026-11-21T10:31:00Z"}, []string{b.ID, c.ID}},
		{[]string{"--until", "2026-11-21T10:31:00Z"}, []string{a.ID}},
		{[]string{"--since", "2026-11-21T11:31:00+01:00", "--until", "2026-11-21T10:32:00.5Z"}, []string{b.ID, c.ID}},
	} {
		out := e.ok(append([]string{"dlq", "list"}, tc.args...)...)
		if got := tableIDs(t, out); !slices.Equal(got, tc.want) {
			t.Errorf("list %v: %v, want %v", tc.args, got, tc.want)
		}
	}
	if out := e.ok("dlq", "list", "--tenant", "nobody"); out != "no dead letters match\n" {
		t.Errorf("list of nothing: %q", out)
	}

	// --json is what GET /admin/v1/dlq answers.
	items, next, err := e.store.DeadLetters(e.ctx(), status.DLQFilter{Queue: e.q}, "", 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(map[string]any{"items": items, "next_cursor": next})
	if out := e.ok("dlq", "list", "--queue", e.q, "--json"); out != string(want)+"\n" {
		t.Errorf("list --json:\n got %s\nwant %s", out, want)
	}
	if out := e.ok("dlq", "list", "--json", "--tenant", "nobody"); out != `{"items":[],"next_cursor":""}`+"\n" {
		t.Errorf("list --json of nothing: %s", out)
	}

	// Paging, in the table and in JSON.
	var ids []string
	args := []string{"dlq", "list", "--limit", "1"}
	for range 5 {
		out := e.ok(args...)
		ids = append(ids, tableIDs(t, out)...)
		m := regexp.MustCompile(`(?m)^more: --cursor (\S+)$`).FindStringSubmatch(out)
		if m == nil {
			break
		}
		args = []string{"dlq", "list", "--limit", "1", "--cursor", m[1]}
	}
	if want := []string{a.ID, b.ID, c.ID}; !slices.Equal(ids, want) {
		t.Errorf("paged through %v, want %v", ids, want)
	}
	var page cliDLQPage
	if err := json.Unmarshal([]byte(e.ok("dlq", "list", "--json", "--limit", "2")), &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 2 || page.NextCursor == "" {
		t.Fatalf("first page of 2: %d items, cursor %q", len(page.Items), page.NextCursor)
	}
	var last cliDLQPage
	if err := json.Unmarshal([]byte(e.ok("dlq", "list", "--json", "--limit", "2", "--cursor", page.NextCursor)), &last); err != nil {
		t.Fatal(err)
	}
	if len(last.Items) != 1 || last.Items[0].Job.ID != c.ID || last.NextCursor != "" {
		t.Errorf("last page: %+v", last)
	}
	e.fails("dlq list: --cursor: is not a cursor", "dlq", "list", "--cursor", "nonsense")
}

func TestDLQShow(t *testing.T) {
	t.Parallel()
	e := newOpsEnv(t, redistest.Shared(t))
	j := e.kill("acme", e.q, "orders", "upstream answered 503\nretry later", dlqT0)

	out := e.ok("dlq", "show", j.ID)
	for _, want := range []string{
		"id:           " + j.ID + "\n",
		"tenant:       acme\n",
		"queue:        " + e.q + "\n",
		"type:         orders\n",
		"state:        dead\n",
		"attempts:     3/3\n",
		"dead at:      2026-11-21T10:30:00Z\n",
		"created at:   2026-11-21T10:29:00Z\n",
		"finished at:  2026-11-21T10:30:00Z\n",
		"error:        upstream answered 503\n              retry later\n",
		"result:       503 Service Unavailable (application/json)\n",
		`body:         {"error":"busy"}` + "\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("show: no %q in\n%s", want, out)
		}
	}
	// Flags may come after the ID; --json is the admin API's answer.
	d, err := e.store.FindDeadLetter(e.ctx(), j.ID)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(d)
	for _, args := range [][]string{{"dlq", "show", j.ID, "--json"}, {"dlq", "show", "--json", j.ID}, {"dlq", "show", "--json", "--", j.ID}} {
		if out := e.ok(args...); out != string(want)+"\n" {
			t.Errorf("%v:\n got %s\nwant %s", args, out, want)
		}
	}
}

func TestDLQReplayOne(t *testing.T) {
	t.Parallel()
	e := newOpsEnv(t, redistest.Shared(t))
	j := e.kill("acme", e.q, "orders", "boom", dlqT0)
	other := e.kill("acme", e.q, "orders", "boom", dlqT0.Add(time.Second))

	out := e.ok("dlq", "replay", j.ID)
	if want := "job " + j.ID + ": queued on queue " + e.q + " (replay 1)\n"; out != want {
		t.Errorf("replay: %q, want %q", out, want)
	}
	got := e.job(j)
	if got.State != jobs.StateQueued || got.Replays != 1 || got.Attempt != 0 || got.Error != "" {
		t.Errorf("after replay: state %s, replays %d, attempt %d, error %q", got.State, got.Replays, got.Attempt, got.Error)
	}
	if _, err := e.client.Inspector().GetTaskInfo(e.client.Space().JobQueue(j.ID, e.q), j.ID); err != nil {
		t.Errorf("replayed job's task: %v", err)
	}
	if ids := tableIDs(t, e.ok("dlq", "list")); !slices.Equal(ids, []string{other.ID}) {
		t.Errorf("dead letters after replay: %v", ids)
	}
	e.fails("job "+j.ID+": not in the dead-letter queue", "dlq", "replay", j.ID)

	var rj jobs.Job
	if err := json.Unmarshal([]byte(e.ok("dlq", "replay", "--json", other.ID)), &rj); err != nil {
		t.Fatal(err)
	}
	if rj.ID != other.ID || rj.State != jobs.StateQueued || rj.Replays != 1 {
		t.Errorf("replay --json: %+v", rj)
	}
}

func TestDLQReplayAll(t *testing.T) {
	t.Parallel()
	e := newOpsEnv(t, redistest.Shared(t))
	var inQ []*jobs.Job
	for i := range 3 {
		inQ = append(inQ, e.kill("acme", e.q, "orders", "upstream answered 503", dlqT0.Add(time.Duration(i)*time.Minute)))
	}
	low1 := e.kill("beta", e.low, "refunds", "dial tcp: connection refused", dlqT0.Add(time.Hour))
	low2 := e.kill("beta", e.low, "refunds", "dial tcp: connection refused", dlqT0.Add(2*time.Hour))

	// A dry run counts and samples, and changes nothing.
	out := e.ok("dlq", "replay", "--all", "--queue", e.q, "--dry-run")
	if !strings.HasPrefix(out, "dry run: nothing was replayed\nmatched:  3\n\nsample (the first 3 of 3 matched, oldest first):\nID ") {
		t.Errorf("dry run:\n%s", out)
	}
	if ids := tableIDs(t, out[strings.Index(out, "ID "):]); !slices.Equal(ids, []string{inQ[0].ID, inQ[1].ID, inQ[2].ID}) {
		t.Errorf("dry run sample: %v", ids)
	}
	var dry admin.BulkResult
	if err := json.Unmarshal([]byte(e.ok("dlq", "replay", "--json", "--dry-run", "--all", "--queue", e.q)), &dry); err != nil {
		t.Fatal(err)
	}
	if !dry.DryRun || dry.Matched != 3 || dry.Replayed != 0 || len(dry.Sample) != 3 || dry.LastDueAt != nil {
		t.Errorf("dry run --json: %+v", dry)
	}
	for _, j := range append(slices.Clone(inQ), low1, low2) {
		if s := e.job(j).State; s != jobs.StateDead {
			t.Errorf("job %s is %s after a dry run", j.ID, s)
		}
	}

	// At one job a second, the first is due at once and the others at the
	// next whole seconds but one and two, counted from the replay's start
	// (some moment between before and after).
	before := time.Now()
	var res admin.BulkResult
	if err := json.Unmarshal([]byte(e.ok("dlq", "replay", "--all", "--queue", e.q, "--rate", "1", "--json")), &res); err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	if res.Matched != 3 || res.Replayed != 3 || res.Skipped != 0 || res.FailedCount != 0 || res.Remaining != 0 || res.Rate != 1 || res.DryRun {
		t.Errorf("replay --all --rate 1: %+v", res)
	}
	if res.LastDueAt == nil || !res.LastDueAt.Equal(res.LastDueAt.Truncate(time.Second)) ||
		res.LastDueAt.Before(before.Truncate(time.Second).Add(3*time.Second)) ||
		res.LastDueAt.After(after.Truncate(time.Second).Add(3*time.Second)) {
		t.Errorf("last due at %v, the replay ran between %v and %v: want the third whole second after its start", res.LastDueAt, before, after)
	}
	if j := e.job(inQ[0]); j.State != jobs.StateQueued || j.Replays != 1 {
		t.Errorf("first replayed: %s, replays %d", j.State, j.Replays)
	}
	if j := e.job(inQ[2]); j.State != jobs.StateScheduled || j.NextAttemptAt == nil || !j.NextAttemptAt.Equal(*res.LastDueAt) {
		t.Errorf("last replayed: %s at %v, want scheduled at %v", j.State, j.NextAttemptAt, res.LastDueAt)
	}
	if j := e.job(low1); j.State != jobs.StateDead {
		t.Errorf("a job of another queue was replayed: %s", j.State)
	}

	// --limit leaves the rest for another call.
	out = e.ok("dlq", "replay", "--all", "--tenant", "beta", "--limit", "1")
	for _, want := range []string{"matched:    2\n", "replayed:   1\n", "skipped:    0\n",
		"failed:     0\n", "remaining:  1  (over --limit; run again for the rest)\n", "rate:       50 per second, the last due at "} {
		if !strings.Contains(out, want) {
			t.Errorf("replay --all --limit 1: no %q in\n%s", want, out)
		}
	}
	if e.job(low1).State != jobs.StateQueued || e.job(low2).State != jobs.StateDead {
		t.Errorf("--limit 1 replayed %s, %s; want the oldest only", e.job(low1).State, e.job(low2).State)
	}
	if !strings.Contains(e.ok("dlq", "replay", "--all"), "matched:    1\nreplayed:   1\n") {
		t.Error("the last dead job was not replayed")
	}
	if out := e.ok("dlq", "list"); out != "the dead-letter queue is empty\n" {
		t.Errorf("after replaying all: %q", out)
	}
}

func TestDLQDelete(t *testing.T) {
	t.Parallel()
	e := newOpsEnv(t, redistest.Shared(t))
	j := e.kill("acme", e.q, "orders", "boom", dlqT0)
	if out := e.ok("dlq", "delete", j.ID); out != "job "+j.ID+": deleted from the dead-letter queue\n" {
		t.Errorf("delete: %q", out)
	}
	if got := e.job(j); got.State != jobs.StateDead {
		t.Errorf("deleted job's record: %s, want it kept as dead", got.State)
	}
	e.fails("job "+j.ID+": not in the dead-letter queue", "dlq", "show", j.ID)
	e.fails("job "+j.ID+": not in the dead-letter queue", "dlq", "delete", j.ID)
	e.fails("job "+j.ID+": not in the dead-letter queue", "dlq", "replay", j.ID)
}

func TestQueuesCommand(t *testing.T) {
	t.Parallel()
	// A server of its own: asynq lists every queue it holds.
	e := newOpsEnv(t, redistest.Start(t))
	e.kill("acme", e.q, "orders", "boom", dlqT0)
	pending := &jobs.Job{ID: jobs.NewID(), Type: "orders", State: jobs.StateQueued, Queue: e.q, MaxAttempts: 3,
		CreatedAt: time.Now().UTC(), UpdatedAt: time.Now().UTC(), Tenant: "acme"}
	if err := e.client.Submit(e.ctx(), pending, &jobs.Request{Method: "POST", URL: "http://127.0.0.1:9/x"}, time.Time{}); err != nil {
		t.Fatal(err)
	}

	names := []string{e.q, e.low, e.hooks}
	slices.Sort(names)
	row := func(out, name string) []string {
		t.Helper()
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) > 0 && f[0] == name {
				return f
			}
		}
		t.Fatalf("no row for %s in\n%s", name, out)
		return nil
	}
	out := e.ok("queues")
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	// The pending job waits in its queue's fair line: its tenant's share
	// is printed under the table.
	if share := "queue " + e.q + ": pending by tenant (taken in turn): acme 1"; len(lines) != 6 || lines[4] != "" || lines[5] != share {
		t.Fatalf("queues: want the table and then %q:\n%s", share, out)
	}
	lines = lines[:4]
	if len(lines) != 4 || !regexp.MustCompile(`^NAME +PENDING +SCHEDULED +RETRY +ACTIVE +DEAD +LATENCY +PAUSED$`).MatchString(lines[0]) ||
		!strings.HasPrefix(lines[1], names[0]+" ") || !strings.HasPrefix(lines[2], names[1]+" ") || !strings.HasPrefix(lines[3], names[2]+" ") {
		t.Fatalf("queues (want %v):\n%s", names, out)
	}
	if r := row(out, e.q); !slices.Equal(r[1:6], []string{"1", "0", "0", "0", "1"}) || r[7] != "no" {
		t.Errorf("row of %s: %v", e.q, r)
	}
	if r := row(out, e.low); !slices.Equal(r[1:], []string{"0", "0", "0", "0", "0", "0s", "no"}) {
		t.Errorf("row of %s: %v", e.low, r)
	}

	var qs struct {
		Queues []admin.Queue `json:"queues"`
	}
	if err := json.Unmarshal([]byte(e.ok("queues", "--json")), &qs); err != nil {
		t.Fatal(err)
	}
	if len(qs.Queues) != 3 || qs.Queues[0].Name != names[0] || qs.Queues[1].Name != names[1] || qs.Queues[2].Name != names[2] {
		t.Fatalf("queues --json: %+v", qs)
	}
	for _, q := range qs.Queues {
		if want := map[string]int{"acme": 1}; q.Name == e.q && !maps.Equal(q.PendingByTenant, want) {
			t.Errorf("queues --json: %s pending by tenant %v, want %v", q.Name, q.PendingByTenant, want)
		}
	}

	if out := e.ok("queues", "pause", e.q); out != "queue "+e.q+": paused\n" {
		t.Errorf("pause: %q", out)
	}
	if r := row(e.ok("queues"), e.q); r[7] != "yes" {
		t.Errorf("after pause: %v", r)
	}
	e.ok("queues", "pause", e.q) // again: no error
	var q admin.Queue
	if err := json.Unmarshal([]byte(e.ok("queues", "resume", e.q, "--json")), &q); err != nil {
		t.Fatal(err)
	}
	if q.Name != e.q || q.Paused || q.Pending != 1 || q.Dead != 1 {
		t.Errorf("resume --json: %+v", q)
	}
	if r := row(e.ok("queues"), e.q); r[7] != "no" {
		t.Errorf("after resume: %v", r)
	}
	e.fails(`queues pause: no such queue "nope"`, "queues", "pause", "nope")
	e.fails("queues pause: missing queue name", "queues", "pause")
	e.fails(`queues: unknown command "stop"`, "queues", "stop", e.q)
}

func TestDLQErrors(t *testing.T) {
	t.Parallel()
	srv := redistest.Shared(t)
	e := newOpsEnv(t, srv)
	id := jobs.NewID()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"dlq", "list", "--bogus"}, "dlq list: unknown flag: --bogus"},
		{[]string{"dlq", "list", "extra"}, `dlq list: unexpected argument "extra"`},
		{[]string{"dlq", "list", "--limit", "0"}, "dlq list: --limit 0: must be a whole number from 1 to 1000"},
		{[]string{"dlq", "list", "--limit", "1001"}, "--limit 1001: must be a whole number from 1 to 1000"},
		{[]string{"dlq", "list", "--limit", "ten"}, `dlq list: --limit "ten": must be a whole number`},
		{[]string{"dlq", "list", "--since", "yesterday"}, `dlq list: --since "yesterday": must be an RFC 3339 time such as 2026-11-21T10:00:00Z`},
		{[]string{"dlq", "list", "--since", "2026-11-21T10:00:00Z", "--until", "2026-11-21T09:00:00Z"}, "--until: must be after since"},
		{[]string{"dlq", "list", "--queue", "a b"}, `--queue "a b": must be 1-64 letters`},
		{[]string{"dlq", "list", "--queue", "a", "--queue", "b"}, "dlq list: --queue: given more than once"},
		{[]string{"dlq", "list", "--queue"}, "dlq list: flag needs an argument: --queue"},
		{[]string{"dlq", "show"}, "dlq show: missing job ID"},
		{[]string{"dlq", "show", id, "other"}, `dlq show: unexpected argument "other"`},
		{[]string{"dlq", "show", id}, "job " + id + ": not in the dead-letter queue"},
		{[]string{"dlq", "show", "no/such"}, `job "no/such": not in the dead-letter queue`},
		{[]string{"dlq", "delete"}, "dlq delete: missing job ID"},
		{[]string{"dlq", "delete", id}, "job " + id + ": not in the dead-letter queue"},
		{[]string{"dlq", "replay"}, "dlq replay: missing job ID: give one, or --all"},
		{[]string{"dlq", "replay", "--queue", e.q}, "dlq replay: missing job ID: give one, or --all"},
		{[]string{"dlq", "replay", "--dry-run"}, "dlq replay: missing job ID: give one, or --all"},
		{[]string{"dlq", "replay", id, "--all"}, "dlq replay: give a job ID or --all, not both"},
		{[]string{"dlq", "replay", id, "--rate", "5"}, "dlq replay: --rate goes with --all, not with a job ID"},
		{[]string{"dlq", "replay", id}, "job " + id + ": not in the dead-letter queue"},
		{[]string{"dlq", "replay", "--all", "--rate", "-1"}, "dlq replay: --rate -1: must be a number of jobs per second from 0"},
		{[]string{"dlq", "replay", "--all", "--rate", "NaN"}, "dlq replay: --rate NaN"},
		{[]string{"dlq", "replay", "--all", "--rate", "100001"}, "--rate 100001"},
		{[]string{"dlq", "replay", "--all", "--limit", "0"}, "dlq replay: --limit 0: must be from 1 to 10000"},
		{[]string{"dlq", "replay", "--all", "--limit", "10001"}, "--limit 10001: must be from 1 to 10000"},
		{[]string{"dlq", "replay", "--all", "--cursor", "x"}, "dlq replay: unknown flag: --cursor"},
		{[]string{"dlq", "purge"}, `dlq: unknown command "purge"`},
	} {
		e.fails(tc.want, tc.args...)
	}
	if _, err := runCLI(t, nil, "dlq"); err == nil || !strings.Contains(err.Error(), "dlq: missing command") {
		t.Errorf("dlq alone: %v", err)
	}
	// The global flags may come before the command.
	if out, err := runCLI(t, nil, "dlq", "--config", e.config, "list"); err != nil || out != "the dead-letter queue is empty\n" {
		t.Errorf("dlq --config FILE list: %q, %v", out, err)
	}
	if _, err := runCLI(t, nil, "dlq", "--help"); err != nil {
		t.Errorf("dlq --help: %v", err)
	}
	if _, err := runCLI(t, nil, "dlq", "list", "--help"); err != nil {
		t.Errorf("dlq list --help: %v", err)
	}

	// No redis.url: not in the file, nor in the environment, nor any file.
	noURL := e.writeConfig(t, "")
	for _, args := range [][]string{
		{"dlq", "list", "--config", noURL},
		{"dlq", "list"},
		{"dlq", "show", id},
		{"queues"},
		{"queues", "pause", e.q},
	} {
		_, err := runCLI(t, nil, args...)
		if err == nil || !strings.HasPrefix(err.Error(), "redis.url, redis.sentinel or redis.cluster: required for ") || !strings.Contains(err.Error(), "embedded Redis") {
			t.Errorf("%v without redis.url: %v", args, err)
		}
	}
	// ASYNCGW_REDIS_URL and ASYNCGW_CONFIG count as for the server.
	env := map[string]string{"ASYNCGW_REDIS_URL": srv.URL()}
	if _, err := runCLI(t, env, "dlq", "list", "--config", noURL); err != nil {
		t.Errorf("with ASYNCGW_REDIS_URL: %v", err)
	}
	if _, err := runCLI(t, map[string]string{"ASYNCGW_CONFIG": e.config}, "queues"); err != nil {
		t.Errorf("with ASYNCGW_CONFIG: %v", err)
	}
	if _, err := runCLI(t, nil, "dlq", "list", "--config", filepath.Join(t.TempDir(), "missing.yaml")); err == nil || !strings.Contains(err.Error(), "config: ") {
		t.Errorf("missing config file: %v", err)
	}
	// A Redis that does not answer.
	down := e.writeConfig(t, "redis:\n  url: redis://127.0.0.1:1/0\n")
	if _, err := runCLI(t, nil, "dlq", "list", "--config", down); err == nil || !strings.Contains(err.Error(), "redis.url: cannot reach 127.0.0.1:1") {
		t.Errorf("Redis down: %v", err)
	}
}

// The commands see only their own prefix's dead letters.
func TestDLQPrefix(t *testing.T) {
	t.Parallel()
	srv := redistest.Shared(t)
	e, other := newOpsEnv(t, srv), newOpsEnv(t, srv)
	j := e.kill("acme", e.q, "orders", "boom", dlqT0)
	other.kill("acme", other.q, "orders", "boom", dlqT0)
	if ids := tableIDs(t, e.ok("dlq", "list")); !slices.Equal(ids, []string{j.ID}) {
		t.Errorf("list: %v, want only %s", ids, j.ID)
	}
	other.fails("not in the dead-letter queue", "dlq", "show", j.ID)
}
