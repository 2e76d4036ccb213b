package redisconn

import "testing"

// TestMasterOf reads the master name out of sentinel event payloads.
func TestMasterOf(t *testing.T) {
	for _, tt := range []struct{ payload, want string }{
		{"master mymaster 127.0.0.1 6379", "mymaster"},
		{"slave 127.0.0.1:6380 127.0.0.1 6380 @ mymaster 127.0.0.1 6379", "mymaster"},
		{"sentinel 0123abcd 127.0.0.1 26379 @ other 127.0.0.1 6379", "other"},
		{"", ""},
		{"slave 127.0.0.1:6380 127.0.0.1 6380", ""},
	} {
		if got := masterOf(tt.payload); got != tt.want {
			t.Errorf("masterOf(%q) = %q, want %q", tt.payload, got, tt.want)
		}
	}
}
