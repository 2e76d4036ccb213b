// Package worker runs jobs: it takes their tasks off asynq's queues (in
// batches, with their records, answering idle queues without Redis), calls
// the upstream with the stored request (or a Sender, or a Go handler),
// applies retries, breakers and the ramp after an outage, and records each
// attempt and the job's end in the store through the Store interface,
// never through jobs/submit.
package worker
