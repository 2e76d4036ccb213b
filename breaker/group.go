package breaker

import (
	"log/slog"
	"maps"
	"sync"
)

// maxGroupSize bounds a Group: past it, closed breakers (which hold no
// state worth keeping) are dropped before a new one is made.
const maxGroupSize = 4096

// Group holds one breaker per key, such as an upstream host, each made on
// first use with the same settings. Breakers are named "<Name> <key>";
// Config.OnChange, if set, is called with the key as the name.
type Group struct {
	cfg Config
	log *slog.Logger

	mu sync.Mutex
	m  map[string]*Breaker
}

// NewGroup returns an empty Group. It checks cfg at once.
func NewGroup(cfg Config, logger *slog.Logger) (*Group, error) {
	if _, err := New(cfg, nil); err != nil {
		return nil, err
	}
	return &Group{cfg: cfg, log: logger, m: map[string]*Breaker{}}, nil
}

// Get returns the breaker of key, making it if needed.
func (g *Group) Get(key string) *Breaker {
	g.mu.Lock()
	defer g.mu.Unlock()
	if b := g.m[key]; b != nil {
		return b
	}
	if len(g.m) >= maxGroupSize {
		maps.DeleteFunc(g.m, func(_ string, b *Breaker) bool { return b.State() == Closed })
	}
	cfg := g.cfg
	cfg.Name = g.cfg.Name + " " + key
	if on := g.cfg.OnChange; on != nil {
		cfg.OnChange = func(_ string, from, to State) { on(key, from, to) }
	}
	b, _ := New(cfg, g.log) // cfg was checked by NewGroup
	g.m[key] = b
	return b
}

// States returns the state of every breaker in the group, by key.
func (g *Group) States() map[string]State {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[string]State, len(g.m))
	for k, b := range g.m {
		out[k] = b.State()
	}
	return out
}
