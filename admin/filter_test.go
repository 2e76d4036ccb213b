package admin

import (
	"testing"
	"time"
)

func TestParseFilter(t *testing.T) {
	t.Parallel()
	f, bad := ParseFilter(FilterInput{Queue: "default", Type: "orders", Tenant: "acme", Error: "503",
		Since: "2026-11-21T10:00:00Z", Until: "2026-11-21T12:00:00+01:00"})
	if len(bad) != 0 || f.Queue != "default" || f.Type != "orders" || f.Tenant != "acme" || f.Error != "503" ||
		!f.Since.Equal(time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)) || !f.Until.Equal(time.Date(2026, 11, 21, 11, 0, 0, 0, time.UTC)) {
		t.Fatalf("ParseFilter = %+v, %v", f, bad)
	}
	tests := []struct {
		in   FilterInput
		name string
	}{
		{FilterInput{Queue: "a b"}, "queue"},
		{FilterInput{Type: "{x}"}, "type"},
		{FilterInput{Tenant: string(make([]byte, 65))}, "tenant"},
		{FilterInput{Error: string(make([]byte, 1025))}, "error"},
		{FilterInput{Since: "yesterday"}, "since"},
		{FilterInput{Until: "2026-11-21"}, "until"},
		{FilterInput{Since: "2026-11-21T10:00:00Z", Until: "2026-11-21T10:00:00Z"}, "until"},
	}
	for _, tt := range tests {
		_, bad := ParseFilter(tt.in)
		if len(bad) != 1 || bad[0].Name != tt.name || bad[0].Detail == "" {
			t.Errorf("ParseFilter(%+v) = %+v, want one problem with %s", tt.in, bad, tt.name)
		}
	}
}

func TestBulkReplayValidate(t *testing.T) {
	t.Parallel()
	for _, b := range []BulkReplay{{}, {Rate: 0.5, Limit: 1}, {Rate: 100000, Limit: MaxBulk}} {
		if err := b.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v", b, err)
		}
	}
	for _, b := range []BulkReplay{{Rate: -1}, {Rate: 100001}, {Limit: -1}, {Limit: MaxBulk + 1}} {
		if err := b.Validate(); err == nil {
			t.Errorf("Validate(%+v) accepted it", b)
		}
	}
}
