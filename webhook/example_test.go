package webhook_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/asyncgw/asyncgw/webhook"
)

// A receiver verifies each delivery before it trusts it: the signature
// over the raw body (read it whole, before decoding), and a timestamp no
// older than five minutes. Any Standard Webhooks library does this; here,
// the specification's reference Go library. The secret is the tenant's
// webhook_secret (during a rotation, the receiver may hold either one).
// webhook-id is the same on every retry of a delivery: a receiver that
// stores it can drop duplicates.
func Example_receiver() {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	verifier, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		panic(err)
	}
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil || verifier.Verify(body, r.Header) != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		fmt.Println("verified", r.Header.Get("webhook-id"))
		w.WriteHeader(http.StatusNoContent) // any 2xx: delivered
	}))
	defer receiver.Close()

	// A delivery signed the way asyncgw signs them, sent as it was
	// signed, then with one byte changed on the way.
	signer, _ := webhook.NewSigner(secret)
	body := []byte(`{"type":"job.succeeded","timestamp":"2026-11-21T10:00:00Z","data":{"id":"abc"}}`)
	headers := signer.Headers("msg_example", time.Now(), body)
	send := func(sent []byte) int {
		req, _ := http.NewRequest(http.MethodPost, receiver.URL, bytes.NewReader(sent))
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	fmt.Println(send(body))
	fmt.Println(send(bytes.Replace(body, []byte("abc"), []byte("abd"), 1)))
	// Output:
	// verified msg_example
	// 204
	// 401
}
