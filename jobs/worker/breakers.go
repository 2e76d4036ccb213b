package worker

import "github.com/asyncgw/asyncgw/breaker"

// UpstreamStates reports the state of this worker's circuit breaker for
// each upstream host it has called, by host (host:port).
func (w *Worker) UpstreamStates() map[string]breaker.State {
	if g := w.breakers[""]; g != nil {
		return g.States()
	}
	return nil
}
