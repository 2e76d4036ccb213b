package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"

	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/jobs/worker"
	"github.com/asyncgw/asyncgw/status"
)

// maxAnswer caps how much of a receiver's answer is kept on the delivery.
const maxAnswer = 64 << 10

// Endpoints remembers the endpoints that answered 410 Gone
// (status.Store).
type Endpoints interface {
	DisableEndpoint(ctx context.Context, d status.DisabledEndpoint) error
	EndpointDisabled(ctx context.Context, tenant, url string) (*status.DisabledEndpoint, error)
}

// Sender sends webhook deliveries: the worker calls it for each attempt
// of a delivery job (worker.Sender).
type Sender struct {
	w      *Webhooks
	ep     Endpoints
	client *http.Client
	log    *slog.Logger
	now    func() time.Time
}

// NewSender returns the Sender of w. resolver may be nil (the system's).
func NewSender(w *Webhooks, ep Endpoints, resolver *net.Resolver, logger *slog.Logger) *Sender {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Sender{
		w: w, ep: ep, log: logger, now: time.Now,
		client: w.settings().cfg.Policy.NewClient(w.settings().cfg.Timeout, resolver),
	}
}

var _ worker.Sender = (*Sender)(nil)

// Send makes one attempt of delivery j. A 2xx answer delivers it; 410
// Gone stops it and disables the endpoint for the tenant; a destination
// the policy refuses fails it at once; anything else (no answer, a
// redirect, any other status) is tried again on the schedule.
func (s *Sender) Send(ctx context.Context, j *jobs.Job, req *jobs.Request) (*jobs.Result, error) {
	if err := s.w.settings().cfg.Policy.CheckURL(req.URL); err != nil {
		return nil, worker.Permanent(fmt.Errorf("callback URL refused: %w", err))
	}
	d, err := s.ep.EndpointDisabled(ctx, j.Tenant, req.URL)
	if err != nil {
		return nil, worker.RetryLater(0, 0, fmt.Errorf("check endpoint: %w", err))
	}
	if d != nil {
		// Dead, not failed: once the endpoint is enabled again, the
		// deliveries it missed can be replayed from the dead-letter queue.
		return nil, worker.GiveUp(fmt.Errorf("endpoint disabled: it answered 410 Gone to delivery %s at %s",
			d.Delivery, d.DisabledAt.Format(time.RFC3339)))
	}
	signer := s.w.settings().signer(j.Tenant)
	if signer == nil {
		return nil, worker.Permanent(errors.New("no webhook signing secret is configured for this tenant"))
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, req.URL, bytes.NewReader(req.Body))
	if err != nil {
		return nil, worker.Permanent(fmt.Errorf("build delivery: %w", err))
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("User-Agent", "asyncgw-webhooks")
	for k, v := range signer.Headers(j.ID, s.now(), req.Body) {
		hr.Header.Set(k, v)
	}
	otel.GetTextMapPropagator().Inject(ctx, propagation.HeaderCarrier(hr.Header))
	resp, err := s.client.Do(hr)
	if err != nil {
		var be *BlockedError
		if errors.As(err, &be) {
			return nil, worker.Permanent(fmt.Errorf("destination refused: %w", be))
		}
		// The URL may carry a receiver's token: keep it out of the error,
		// which is logged and stored on the delivery.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, worker.RetryLater(0, 0, fmt.Errorf("deliver: %w", err))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	res := jobs.NewResult(resp.StatusCode, resp.Header, body)
	code := resp.StatusCode
	switch {
	case code >= 200 && code < 300:
		return res, nil
	case code == http.StatusGone:
		err := s.ep.DisableEndpoint(context.WithoutCancel(ctx), status.DisabledEndpoint{
			Tenant: j.Tenant, URL: req.URL, DisabledAt: s.now().UTC(), Delivery: j.ID,
		})
		if err != nil {
			// Not disabled: try again, and hear 410 again.
			return res, worker.RetryLater(code, 0, fmt.Errorf("endpoint answered 410 Gone; disabling it failed: %w", err))
		}
		s.log.Warn("webhook endpoint disabled: it answered 410 Gone", "tenant", j.Tenant, "host", hr.URL.Host, "delivery", j.ID)
		return res, worker.Permanent(errors.New("endpoint answered 410 Gone: it is disabled for this tenant"))
	case code >= 300 && code < 400:
		return res, worker.RetryLater(code, 0, fmt.Errorf("endpoint answered %d %s: redirects are not followed", code, http.StatusText(code)))
	default:
		ra := jobs.ParseRetryAfter(resp.Header.Get("Retry-After"), s.now())
		return res, worker.RetryLater(code, ra, fmt.Errorf("endpoint answered %d %s", code, http.StatusText(code)))
	}
}
