package worker

import (
	"bytes"
	"log/slog"
	"testing"
)

// TestRunLog: a run's lines carry the job's attributes first, the type
// once known, and a level that is off writes nothing.
func TestRunLog(t *testing.T) {
	var out bytes.Buffer
	l := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	r := runLog{l: l, id: "j1", tenant: "acme", attempt: 2}
	r.Debug("job running")
	r.Warn("drop task")
	r.typ = "orders"
	r.Info("job ended", "state", "succeeded")
	want := "level=WARN msg=\"drop task\" job_id=j1 tenant=acme attempt=2\n" +
		"level=INFO msg=\"job ended\" job_id=j1 tenant=acme attempt=2 type=orders state=succeeded\n"
	if got := out.String(); got != want {
		t.Fatalf("lines:\n%s\nwant:\n%s", got, want)
	}
}
