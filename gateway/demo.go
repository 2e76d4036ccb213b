package gateway

import (
	"encoding/json"
	"io"
	"net/http"
	"time"

	"github.com/labstack/echo/v5"
)

// demoDelay is how long the demo upstream takes to answer.
const demoDelay = 1500 * time.Millisecond

// demoUpstream is a small slow service for the out-of-the-box demo: it
// takes a moment, then answers 201 with what it received.
func demoUpstream(c *echo.Context) error {
	body, _ := io.ReadAll(io.LimitReader(c.Request().Body, 1<<20))
	select {
	case <-time.After(demoDelay):
	case <-c.Request().Context().Done():
		return nil
	}
	var received any = string(body)
	if json.Valid(body) {
		received = json.RawMessage(body)
	}
	return c.JSON(http.StatusCreated, map[string]any{
		"received":        received,
		"idempotency_key": c.Request().Header.Get("Idempotency-Key"),
		"processed_at":    time.Now().UTC(),
	})
}
