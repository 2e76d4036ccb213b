package client_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/asyncgw/asyncgw/client"
)

// A write submitted, followed to its end, and its result read, against
// an asyncgw the example starts in its own process.
func Example() {
	demo := startDemo() // asyncgw with a route POST /v1/orders
	defer demo.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	c, err := client.New(demo.URL, "") // the API key: none on this demo
	if err != nil {
		log.Fatal(err)
	}
	acc, err := c.Submit(ctx, "/v1/orders", map[string]any{"sku": "A-1042", "quantity": 3})
	if err != nil {
		log.Fatal(err)
	}
	job, err := c.Wait(ctx, acc.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(job.State, job.Result.Status, string(job.Result.Body))
	// Output: succeeded 201 {"order":"o-1042"}
}

// Sending a write again after a crash: the same Idempotency-Key gives the
// job the first send made, never a second one.
func ExampleClient_Submit() {
	demo := startDemo()
	defer demo.Close()
	ctx := context.Background()
	c, _ := client.New(demo.URL, "")

	first, err := c.Submit(ctx, "/v1/orders", `{"sku":"A-1042"}`, client.IdempotencyKey("order-1042"))
	if err != nil {
		log.Fatal(err)
	}
	again, err := c.Submit(ctx, "/v1/orders", `{"sku":"A-1042"}`, client.IdempotencyKey("order-1042"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(again.ID == first.ID, again.Replayed)
	// Output: true true
}

// A job of another tenant, or none, is ErrNotFound; the *Error carries
// the problem's members.
func ExampleError() {
	demo := startDemo()
	defer demo.Close()
	c, _ := client.New(demo.URL, "")

	_, err := c.Get(context.Background(), "aaaaaaaaaaaaaaaaaaaaaaaaaa")
	var e *client.Error
	if errors.As(err, &e) {
		fmt.Println(errors.Is(err, client.ErrNotFound), e.Status, e.Slug())
	}
	// Output: true 404 not-found
}

// Following every job of the tenant; a kept Event.ID resumes later with
// client.After.
func ExampleClient_Events() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, _ := client.New("https://gateway.example.com", "agw_…")
	for ev, err := range c.Events(ctx) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(ev.Job.ID, ev.Kind)
		// Keep ev.ID to resume with c.Events(ctx, client.After(id)).
	}
}

// A backend hands a web page a stream token, never its API key; the page
// follows the job with EventSource.
func ExampleClient_StreamToken() {
	c, _ := client.New("https://gateway.example.com", "agw_…")
	http.HandleFunc("/orders/{id}/token", func(w http.ResponseWriter, r *http.Request) {
		tok, err := c.StreamToken(r.Context(), r.PathValue("id"))
		if err != nil {
			http.Error(w, "no such order", http.StatusNotFound)
			return
		}
		// In the page: new EventSource(gateway + "/v1/jobs/" + id + "/events?token=" + encodeURIComponent(token))
		fmt.Fprint(w, tok.Token)
	})
}

// A webhook receiver checks each delivery before trusting it.
func ExampleVerify() {
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	body := []byte(`{"id":"gqarwptdkwnyl7czi4lvhicj2m","state":"succeeded"}`)
	// What a delivery from asyncgw carries (signed here for the example).
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("msg_1." + ts + "." + string(body)))
	header := http.Header{}
	header.Set("webhook-id", "msg_1")
	header.Set("webhook-timestamp", ts)
	header.Set("webhook-signature", "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))

	fmt.Println(client.Verify(secret, header, body, 5*time.Minute))
	fmt.Println(client.Verify(secret, header, []byte(`{"state":"failed"}`), 5*time.Minute))
	// Output:
	// <nil>
	// client: webhook signature does not verify
}

// In a receiver's handler.
func ExampleVerify_handler() {
	secret := "whsec_…" // the tenant's webhook secret
	http.HandleFunc("/hooks/asyncgw", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil || client.Verify(secret, r.Header, body, 0) != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var job client.Job
		_ = job // decode body into job, deduplicating by r.Header.Get("webhook-id")
		w.WriteHeader(http.StatusNoContent)
	})
}
