package status

import "github.com/asyncgw/asyncgw/internal/keyspace"

// Keys of a job and a tenant, for the tests that look at Redis directly.

func (s *Store) jobKey(_, id string) string { return s.ks.Record(id) }

func (s *Store) eventsKey(_, id string) string { return keyspace.EventList(s.ks.Record(id)) }

func (s *Store) deliveriesKey(_, id string) string { return keyspace.Deliveries(s.ks.Record(id)) }

func (s *Store) streamKey(tenant string) string { return s.ks.Stream(0, tenant) }

func (s *Store) dlqKey(tenant, queue string) string { return s.ks.DeadLetters(0, tenant, queue) }

func (s *Store) outboxKey(tenant string) string { return s.ks.Outbox(0, tenant) }
