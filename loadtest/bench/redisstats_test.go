package main

import (
	"strings"
	"testing"

	"github.com/asyncgw/asyncgw/internal/keyspace"
)

// TestScriptOf names the scripts of MONITOR lines: asyncgw's by SHA-1 or
// by source, asynq's by their SHA's start, and nothing for other commands
// or for the commands a script runs.
func TestScriptOf(t *testing.T) {
	names := scriptNames()
	var accept string
	for sha, name := range names {
		if name == "accept" {
			accept = sha
		}
	}
	if accept == "" {
		t.Fatal("no SHA-1 for the accept script")
	}
	// The accept script's source as MONITOR quotes it.
	escaped := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\t", `\t`, "\r", `\r`).Replace(keyspace.Source("accept"))
	for _, tc := range []struct{ line, want string }{
		{`+1700000000.123456 [0 127.0.0.1:5555] "evalsha" "` + accept + `" "2" "k1" "k2"`, "accept"},
		{`+1700000000.123456 [0 127.0.0.1:5555] "evalsha" "` + accept + `" "2" "k1" "k2"` + "\r\n", "accept"}, // as read off the wire
		{`+1700000000.123456 [0 127.0.0.1:5555] "EVALSHA" "A8153319360ADC71CDC370107F8AB9786F204765" "1"`, "asynq dequeue"},
		{`+1700000000.123456 [0 127.0.0.1:5555] "evalsha" "3c8548ad44d0dfcfde50f07ea9271d77f656042c" "2"`, "asynq 3c8548ad"},
		{`+1700000000.123456 [0 127.0.0.1:5555] "eval" "return redis.call(\"GET\", KEYS[1])\n" "1" "k"`, "eval asynq b4e82ca2"},
		{`+1700000000.123456 [0 127.0.0.1:5555] "eval" "` + escaped + `" "2" "k1" "k2"`, "eval accept"},
		{`+1700000000.123456 [0 lua] "hset" "k" "f" "v"`, ""},
		{`+1700000000.123456 [0 127.0.0.1:5555] "hmget" "k" "f"`, ""},
		{`+OK`, ""},
	} {
		got, ok := scriptOf(tc.line, names)
		if ok != (tc.want != "") || got != tc.want {
			t.Errorf("scriptOf(%q) = %q, %v; want %q", tc.line, got, ok, tc.want)
		}
	}
}
