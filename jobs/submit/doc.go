// Package submit stores jobs: a Client accepts a job (its record, first
// event, task and Idempotency-Key in one step through the store), replays
// a dead one, cancels one, names new job IDs on their shard, and registers,
// reads, pauses and resumes the queues; a Monitor keeps the queues' depth
// and drain rate for admission. The gateway, the admin API and webhook
// dispatch submit through it; the worker does not (see jobs/worker).
package submit
