package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/asyncgw/asyncgw/gateway"
	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/jobs/submit"
)

func TestCancel(t *testing.T) {
	t.Parallel()
	h := Start(t, Options{Routes: []gateway.Route{
		{Name: "slow", Path: "/v1/slow", Upstream: "/slow", Timeout: time.Minute},
		{Name: "fine", Path: "/v1/fine", Upstream: "/fine"},
	}})
	arrived := make(chan struct{}, 1)
	abandoned := make(chan struct{})
	answered := make(chan struct{}, 1)
	proceed := make(chan struct{})
	h.Upstream.Handle(func(w http.ResponseWriter, r *http.Request, c Call) {
		if r.URL.Path != "/slow" {
			okJSON(w, r, c)
			return
		}
		context.AfterFunc(r.Context(), func() { close(abandoned) })
		arrived <- struct{}{}
		// Once released, answer success whether or not the worker still
		// listens: a canceled job must stay canceled.
		select {
		case <-proceed:
		case <-h.Upstream.Released():
		}
		okJSON(w, r, c)
		answered <- struct{}{}
	})
	id := h.Submit(t, "/v1/slow", `{}`)
	recv(t, arrived, "the upstream call")

	r := h.Do(t, http.MethodDelete, "/v1/jobs/"+id, nil, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("DELETE: status %d, want 200; body %s", r.Status, r.Body)
	}
	if j := decodeJob(t, r.Body); j.ID != id || j.State != jobs.StateCanceled || j.FinishedAt == nil {
		t.Errorf("DELETE answered %s, want the job canceled", r.Body)
	}
	if j, _ := h.Job(t, id); j.State != jobs.StateCanceled {
		t.Errorf("GET after DELETE: state %s, want canceled", j.State)
	}

	// The worker stops waiting for the upstream.
	recv(t, abandoned, "the worker to abandon the upstream call of the canceled job")

	// Let the upstream answer, then wait until asynq is done with the task
	// (the worker has seen the cancel and any rerun has finished).
	close(proceed)
	recv(t, answered, "the upstream's answer")
	insp := submit.New(h.Redis, h.Store, nil).Inspector()
	Eventually(t, WaitTimeout, func() (bool, string) {
		info, err := insp.GetTaskInfo(h.AsynqQueue(h.Queues.Default, id), id)
		if errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound) {
			return true, ""
		}
		if err != nil {
			return false, err.Error()
		}
		return false, fmt.Sprintf("task is still %s", info.State)
	})
	h.WaitState(t, h.Submit(t, "/v1/fine", `{}`), jobs.StateSucceeded)

	j, _ := h.Job(t, id)
	if j.State != jobs.StateCanceled || j.Result != nil {
		t.Errorf("after the upstream answered: state %s result %+v, want canceled without result", j.State, j.Result)
	}
	if n := len(h.Upstream.Calls(id)); n != 1 {
		t.Errorf("upstream called %d times for the canceled job, want 1", n)
	}
	st := h.Events(t, "/v1/jobs/"+id+"/events", "")
	var kinds []string
	for {
		ev := st.Next(t)
		kinds = append(kinds, ev.Event)
		if jobs.State(ev.Event).Terminal() {
			break
		}
	}
	if want := []string{"queued", "running", "canceled"}; !slices.Equal(kinds, want) {
		t.Errorf("events %v, want %v", kinds, want)
	}
	requireProblem(t, "GET result of a canceled job", h.Do(t, http.MethodGet, "/v1/jobs/"+id+"/result", nil, nil), http.StatusNotFound)

	// Canceling again: the job has ended.
	requireProblem(t, "second DELETE", h.Do(t, http.MethodDelete, "/v1/jobs/"+id, nil, nil), http.StatusConflict)

	// Unknown jobs, well-formed or not.
	for _, unknown := range []string{jobs.NewID(), "not-a-job-id"} {
		for _, req := range []struct{ method, path string }{
			{http.MethodDelete, "/v1/jobs/" + unknown},
			{http.MethodGet, "/v1/jobs/" + unknown},
			{http.MethodGet, "/v1/jobs/" + unknown + "/result"},
			{http.MethodGet, "/v1/jobs/" + unknown + "/events"},
		} {
			requireProblem(t, req.method+" "+req.path, h.Do(t, req.method, req.path, nil, nil), http.StatusNotFound)
		}
	}
}

func TestCancelQueuedJob(t *testing.T) {
	t.Parallel()
	h := Start(t, Options{Routes: []gateway.Route{{Name: "orders", Path: "/v1/orders", Upstream: "/orders"}}})
	h.Upstream.Handle(okJSON)
	r := h.PostJSON(t, "/v1/jobs", `{"type":"orders","delay":"1h"}`)
	if r.Status != http.StatusAccepted {
		t.Fatalf("status %d; body %s", r.Status, r.Body)
	}
	id := decodeJob(t, r.Body).ID
	r = h.Do(t, http.MethodDelete, "/v1/jobs/"+id, nil, nil)
	if r.Status != http.StatusOK || decodeJob(t, r.Body).State != jobs.StateCanceled {
		t.Fatalf("DELETE: %d %s, want 200 canceled", r.Status, r.Body)
	}
	// The scheduled task is gone from the queue, not merely skipped later.
	_, err := submit.New(h.Redis, h.Store, nil).Inspector().GetTaskInfo(h.AsynqQueue(h.Queues.Default, id), id)
	if !errors.Is(err, asynq.ErrTaskNotFound) {
		t.Errorf("task of the canceled job: %v, want it deleted", err)
	}
}
