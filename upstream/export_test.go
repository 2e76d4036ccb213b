package upstream

// kill stops the lease's renewals, as a killed holder's stop.
func (ls *Lease) kill() {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.done = true
	ls.timer.Stop()
}
