package webhook

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/status"
)

// Outbox is where the events to send wait (status.Store). A tenant's
// outbox may be spread over shards: ClaimOutbox takes from every one, and
// returns what it took even when a shard failed (with that error).
type Outbox interface {
	OutboxTenants(ctx context.Context) ([]string, error)
	ClaimOutbox(ctx context.Context, tenant string, n int, lease time.Duration) ([]status.OutboxEntry, error)
	AckOutbox(ctx context.Context, e status.OutboxEntry) error
	OutboxCallback(ctx context.Context, e status.OutboxEntry) (*status.Callback, error)
	AddDelivery(ctx context.Context, tenant, id string, seq int64, deliveryID string) error
	Get(ctx context.Context, tenant, id string) (*jobs.Job, error)
	Request(ctx context.Context, tenant, id string) (*jobs.Request, error)
}

// Submitter stores delivery jobs (submit.Client).
type Submitter interface {
	Submit(ctx context.Context, j *jobs.Job, req *jobs.Request, processAt time.Time) error
}

// Dispatcher turns outbox entries into delivery jobs. Several may run (one
// per worker process): an entry is leased to one of them at a time, and a
// delivery's ID is made from its event, so that an entry taken twice still
// makes one delivery.
type Dispatcher struct {
	w    *Webhooks
	box  Outbox
	jobs Submitter
	log  *slog.Logger

	// Lease is how long a claimed entry is left to its taker. Defaults to
	// 30s.
	Lease time.Duration

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// NewDispatcher returns a Dispatcher; Start runs it.
func NewDispatcher(w *Webhooks, box Outbox, sub Submitter, logger *slog.Logger) *Dispatcher {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Dispatcher{
		w: w, box: box, jobs: sub, log: logger, Lease: 30 * time.Second,
		stop: make(chan struct{}), done: make(chan struct{}),
	}
}

// Start runs the dispatcher until Stop.
func (d *Dispatcher) Start(context.Context) error {
	go d.loop()
	return nil
}

// Stop ends the dispatcher and waits for the round in progress.
func (d *Dispatcher) Stop(ctx context.Context) error {
	d.once.Do(func() { close(d.stop) })
	select {
	case <-d.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (d *Dispatcher) loop() {
	defer close(d.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-d.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-t.C:
		}
		n, err := d.Round(ctx)
		if err != nil && ctx.Err() == nil {
			d.log.Warn("webhook dispatch", "err", err)
		}
		wait := d.w.settings().cfg.PollInterval
		if n > 0 && err == nil {
			wait = 0 // more may be waiting
		}
		t.Reset(wait)
	}
}

// batch is how many entries of one tenant one round takes.
const batch = 100

// Round turns the due entries of every outbox (up to a batch per tenant)
// into deliveries and reports how many it made.
func (d *Dispatcher) Round(ctx context.Context) (int, error) {
	tenants, err := d.box.OutboxTenants(ctx)
	if err != nil {
		return 0, err
	}
	made := 0
	var errs []error
	for _, t := range tenants {
		entries, err := d.box.ClaimOutbox(ctx, t, batch, d.Lease)
		if err != nil {
			// What the other shards gave is dispatched all the same.
			errs = append(errs, err)
		}
		for _, e := range entries {
			if err := d.dispatch(ctx, e); err != nil {
				errs = append(errs, err)
				continue
			}
			made++
		}
	}
	return made, errors.Join(errs...)
}

// dispatch stores the delivery of one entry and takes the entry out.
func (d *Dispatcher) dispatch(ctx context.Context, e status.OutboxEntry) error {
	cb, err := d.box.OutboxCallback(ctx, e)
	if errors.Is(err, jobs.ErrNotFound) {
		d.log.Warn("drop webhook of an expired job", "tenant", e.Tenant, "job_id", e.JobID, "seq", e.Seq)
		return d.box.AckOutbox(ctx, e)
	}
	if err != nil {
		return err
	}
	j, req, err := d.delivery(cb)
	if err != nil {
		d.log.Error("drop unreadable webhook event", "tenant", e.Tenant, "job_id", e.JobID, "seq", e.Seq, "err", err)
		return d.box.AckOutbox(ctx, e)
	}
	// The delivery joins the trace of the job it reports, when that can
	// be read: a delivery without one is still sent.
	if parent, err := d.box.Request(ctx, e.Tenant, e.JobID); err == nil {
		req.TraceParent, req.TraceState = parent.TraceParent, parent.TraceState
	}
	err = d.jobs.Submit(ctx, j, req, time.Time{})
	if errors.Is(err, jobs.ErrExists) {
		// Made before (by a taker that died before the ack, or another
		// dispatcher): done if its record is there. A task without a
		// record is dropped by the worker after a while; the entry comes
		// back after its lease and tries again.
		if _, gerr := d.box.Get(ctx, j.Tenant, j.ID); gerr != nil {
			return gerr
		}
		err = nil
	}
	if err != nil {
		return err
	}
	if err := d.box.AddDelivery(ctx, e.Tenant, e.JobID, e.Seq, j.ID); err != nil {
		return err
	}
	return d.box.AckOutbox(ctx, e)
}

// deliveryIDs encodes delivery IDs like job IDs.
var deliveryIDs = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// DeliveryID is the ID of the delivery of event seq of a job: the same
// every time it is made.
func DeliveryID(tenant, jobID string, seq int64) string {
	sum := sha256.Sum256([]byte("webhook\n" + tenant + "\n" + jobID + "\n" + strconv.FormatInt(seq, 10)))
	return deliveryIDs.EncodeToString(sum[:16])
}

// Payload is the body of a delivery.
type Payload struct {
	// Type is "job." and the event's kind: "job.succeeded".
	Type string `json:"type"`
	// Timestamp is when the event happened.
	Timestamp time.Time `json:"timestamp"`
	// Data is the job resource as it was at the event.
	Data json.RawMessage `json:"data"`
}

// delivery builds the delivery job of an event.
func (d *Dispatcher) delivery(cb *status.Callback) (*jobs.Job, *jobs.Request, error) {
	ev := cb.Event
	var doc jobs.Job
	if err := json.Unmarshal(ev.Data, &doc); err != nil {
		return nil, nil, err
	}
	body, err := json.Marshal(Payload{Type: "job." + ev.Kind, Timestamp: doc.UpdatedAt, Data: ev.Data})
	if err != nil {
		return nil, nil, err
	}
	cfg := d.w.settings().cfg
	now := time.Now().UTC()
	j := &jobs.Job{
		ID: DeliveryID(ev.Tenant, ev.JobID, ev.Seq), Type: JobType, State: jobs.StateQueued,
		Queue: cfg.Queue, MaxAttempts: len(cfg.Schedule) + 1, CreatedAt: now, UpdatedAt: now,
		Tenant:  ev.Tenant,
		Webhook: &jobs.WebhookRef{JobID: ev.JobID, Event: ev.Kind, Seq: ev.Seq, URL: cb.URL},
	}
	schedule := make([]jobs.Duration, len(cfg.Schedule))
	for i, s := range cfg.Schedule {
		schedule[i] = jobs.Duration(s)
	}
	req := &jobs.Request{
		Method: http.MethodPost, URL: cb.URL, Body: body, Kind: Kind,
		Header:  http.Header{"Content-Type": {"application/json"}},
		Timeout: jobs.Duration(cfg.Timeout), Backoff: jobs.Backoff{Schedule: schedule},
	}
	return j, req, nil
}
