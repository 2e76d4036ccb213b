package worker

import "testing"

// TestDefaultFetchers: one fetch loop per 16 of concurrency, between 1 and
// 4, and a worker configured without fetchers gets that many.
func TestDefaultFetchers(t *testing.T) {
	t.Parallel()
	for concurrency, want := range map[int]int{1: 1, 16: 1, 31: 1, 32: 2, 50: 3, 64: 4, 1000: 4} {
		if got := DefaultFetchers(concurrency); got != want {
			t.Errorf("DefaultFetchers(%d) = %d, want %d", concurrency, got, want)
		}
		cfg := Config{Concurrency: concurrency}.withDefaults()
		if cfg.Fetchers != want {
			t.Errorf("concurrency %d: worker gets %d fetchers, want %d", concurrency, cfg.Fetchers, want)
		}
	}
	if cfg := (Config{Concurrency: 50, Fetchers: 7}).withDefaults(); cfg.Fetchers != 7 {
		t.Errorf("configured fetchers replaced: %d, want 7", cfg.Fetchers)
	}
}
