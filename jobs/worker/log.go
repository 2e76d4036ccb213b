package worker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
)

func orDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return l
}

// asynqLogger adapts slog to asynq's Logger interface.
type asynqLogger struct{ l *slog.Logger }

func (a asynqLogger) Debug(args ...any) { a.l.Debug(fmt.Sprint(args...), "component", "asynq") }
func (a asynqLogger) Info(args ...any)  { a.l.Info(fmt.Sprint(args...), "component", "asynq") }
func (a asynqLogger) Warn(args ...any)  { a.l.Warn(fmt.Sprint(args...), "component", "asynq") }
func (a asynqLogger) Error(args ...any) { a.l.Error(fmt.Sprint(args...), "component", "asynq") }
func (a asynqLogger) Fatal(args ...any) {
	a.l.Error(fmt.Sprint(args...), "component", "asynq", "fatal", true)
}

// runLog writes the log lines of one run of a job, each with the job's ID,
// tenant, attempt and (once known) type. The attributes are put together
// only for a line that is written: slog's With would format them for
// every run, most of which write one line or none.
type runLog struct {
	l               *slog.Logger
	id, tenant, typ string
	attempt         int
}

func (r runLog) log(level slog.Level, msg string, args ...any) {
	ctx := context.Background()
	if !r.l.Enabled(ctx, level) {
		return
	}
	attrs := make([]any, 0, 8+len(args))
	attrs = append(attrs, "job_id", r.id, "tenant", r.tenant, "attempt", r.attempt)
	if r.typ != "" {
		attrs = append(attrs, "type", r.typ)
	}
	r.l.Log(ctx, level, msg, append(attrs, args...)...)
}

func (r runLog) Debug(msg string, args ...any) { r.log(slog.LevelDebug, msg, args...) }
func (r runLog) Info(msg string, args ...any)  { r.log(slog.LevelInfo, msg, args...) }
func (r runLog) Warn(msg string, args ...any)  { r.log(slog.LevelWarn, msg, args...) }
