package gateway

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/labstack/echo/v5"
)

func TestParseRoutePath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		path, echo, shape string
		params            []string
	}{
		{"/v1/orders", "/v1/orders", "/v1/orders", nil},
		{"/v1/orders/{customer}", "/v1/orders/:customer", "/v1/orders/:", []string{"customer"}},
		{"/v1/orders/:customer", "/v1/orders/:customer", "/v1/orders/:", []string{"customer"}},
		{"/v1/{tenant}/orders/:id/items", "/v1/:tenant/orders/:id/items", "/v1/:/orders/:/items", []string{"tenant", "id"}},
		{"/v1/files/*", "/v1/files/*", "/v1/files/*", []string{"*"}},
		{"/v1/things\\:batch", "/v1/things\\:batch", "/v1/things\\:batch", nil},
	}
	for _, tt := range tests {
		rp, err := parseRoutePath(tt.path)
		if err != nil || rp.echo != tt.echo || rp.shape != tt.shape || !slices.Equal(rp.params, tt.params) {
			t.Errorf("parseRoutePath(%q) = %+v, %v; want %s %s %v", tt.path, rp, err, tt.echo, tt.shape, tt.params)
		}
	}
	for path, want := range map[string]string{
		"/v1/orders/{customer":   "must be a whole segment",
		"/v1/orders/customer}":   "must be a whole segment",
		"/v1/orders/{}":          "must be a whole segment",
		"/v1/orders/id-{id}":     "must be a whole segment",
		"/v1/orders/{id}.json":   "must be a whole segment",
		"/v1/orders/:":           `parameter ":" needs a name`,
		"/v1/orders/{:id}":       `parameter "::id" needs a name`,
		"/v1/orders/:id/:id":     `parameter "id" is named twice`,
		"/v1/orders/{id}/x/:id":  `parameter "id" is named twice`,
		"/v1/orders/{a}/{b}/{a}": `parameter "a" is named twice`,
	} {
		if _, err := parseRoutePath(path); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseRoutePath(%q) = %v, want an error with %q", path, err, want)
		}
	}
}

// TestRoutePathErrors: a route path or upstream that cannot work stops
// New with one line naming the route's key.
func TestRoutePathErrors(t *testing.T) {
	t.Parallel()
	route := func(path, upstream string) Route {
		return Route{Name: "r" + string(rune('a'+len(path)%26)), Path: path, Upstream: upstream}
	}
	tests := []struct {
		name   string
		routes []Route
		want   string
	}{
		{"placeholder without a parameter", []Route{route("/v1/orders", "http://127.0.0.1:9/orders/{customer}")},
			`routes[0].upstream: "http://127.0.0.1:9/orders/{customer}": placeholder "customer" matches no parameter of the route's path /v1/orders`},
		{"colon placeholder without a parameter", []Route{route("/v1/orders/{id}", "http://127.0.0.1:9/orders/:customer/x")},
			`routes[0].upstream: "http://127.0.0.1:9/orders/:customer/x": placeholder "customer" matches no parameter of the route's path /v1/orders/:id`},
		{"placeholder in the query", []Route{route("/v1/orders/{id}", "http://127.0.0.1:9/orders?id={id}")},
			`routes[0].upstream: "http://127.0.0.1:9/orders?id={id}": placeholders are replaced only in whole path segments`},
		{"placeholder in part of a segment", []Route{route("/v1/orders/{id}", "http://127.0.0.1:9/orders/{id}.json")},
			`routes[0].upstream: "http://127.0.0.1:9/orders/{id}.json": "{id}.json": a placeholder must be a whole path segment`},
		{"one route in two syntaxes", []Route{
			{Name: "a", Path: "/v1/orders/{customer}", Upstream: "http://127.0.0.1:9/a"},
			{Name: "b", Path: "/v1/orders/:customer", Upstream: "http://127.0.0.1:9/b"},
		}, "routes[1].path: POST /v1/orders/:customer is used twice (also routes[0].path)"},
		{"one route with other parameter names", []Route{
			{Name: "a", Method: "PUT", Path: "/v1/orders/{customer}/items/:item", Upstream: "http://127.0.0.1:9/a"},
			{Name: "b", Method: "GET", Path: "/v1/orders/{customer}/items/:item", Upstream: "http://127.0.0.1:9/a"},
			{Name: "c", Method: "put", Path: "/v1/orders/:id/items/{n}", Upstream: "http://127.0.0.1:9/b"},
		}, "routes[2].path: PUT /v1/orders/:id/items/{n} is used twice (also routes[0].path)"},
		{"bad path", []Route{route("/v1/orders/{customer", "http://127.0.0.1:9/orders")},
			`routes[0].path: "/v1/orders/{customer": a parameter in braces must be a whole segment`},
		{"reserved path", []Route{route("/healthz", "http://127.0.0.1:9/orders")}, `routes[0].path: "/healthz" is reserved by asyncgw`},
		{"reserved demo path", []Route{route("/_demo/upstream", "http://127.0.0.1:9/orders")}, `routes[0].path: "/_demo/upstream" is reserved by asyncgw`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(Config{Routes: tt.routes}, Deps{Jobs: &keptJobs{}, Store: emptyStore{}, Hub: quietFeed{}})
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("New: %v\nwant one line starting %s", err, tt.want)
			}
		})
	}
}

func TestUpstreamURL(t *testing.T) {
	t.Parallel()
	params := echo.PathValues{{Name: "customer", Value: "c 42/é"}, {Name: "id", Value: "7"}}
	tests := []struct {
		tmpl    string
		escaped bool
		params  echo.PathValues
		query   string
		want    string
	}{
		{"http://h/orders", false, nil, "", "http://h/orders"},
		{"http://h/orders", false, nil, "a=1&b=two%20words", "http://h/orders?a=1&b=two%20words"},
		{"http://h/orders?src=gw", false, nil, "a=1", "http://h/orders?src=gw&a=1"},
		{"http://h/c/{customer}/o/:id", false, params, "", "http://h/c/c%2042%2F%C3%A9/o/7"},
		{"http://h:8080/c/:customer", false, params, "", "http://h:8080/c/c%2042%2F%C3%A9"},
		// Read from the escaped path: the value is unescaped once.
		{"http://h/c/{customer}", true, echo.PathValues{{Name: "customer", Value: "a%2Fb%20c"}}, "", "http://h/c/a%2Fb%20c"},
		{"http://h/c/{customer}", false, echo.PathValues{{Name: "customer", Value: "100%"}}, "", "http://h/c/100%25"},
		// Literal segments are kept as written.
		{"http://h/v1/things:batch/a%2Fb/{id}", false, params, "", "http://h/v1/things:batch/a%2Fb/7"},
	}
	for _, tt := range tests {
		got, err := upstreamURL(tt.tmpl, tt.params, tt.escaped, tt.query)
		if err != nil || got != tt.want {
			t.Errorf("upstreamURL(%q, %v, %v, %q) = %q, %v; want %q", tt.tmpl, tt.params, tt.escaped, tt.query, got, err, tt.want)
		}
	}
}

// TestRouteParameterSyntaxes: a route path with "{param}" registers a
// parameter as ":param" does; the request's value reaches the upstream
// URL in either placeholder syntax, escaped once.
func TestRouteParameterSyntaxes(t *testing.T) {
	t.Parallel()
	g, kept := newKeptGateway(t, Config{Routes: []Route{
		{Name: "braces", Path: "/v1/customers/{customer}/orders", Upstream: "http://127.0.0.1:9/crm/:customer/orders"},
		{Name: "colon", Path: "/v1/accounts/:account/items/{item}", Upstream: "http://127.0.0.1:9/acc/{account}/i/{item}?v=2"},
	}})
	tests := []struct {
		path, want string
	}{
		{"/v1/customers/c-42/orders", "http://127.0.0.1:9/crm/c-42/orders"},
		{"/v1/customers/c-42/orders?x=1", "http://127.0.0.1:9/crm/c-42/orders?x=1"},
		{"/v1/customers/c%2042/orders", "http://127.0.0.1:9/crm/c%2042/orders"},
		{"/v1/customers/a%2Fb/orders", "http://127.0.0.1:9/crm/a%2Fb/orders"},
		{"/v1/customers/%7Bcustomer%7D/orders", "http://127.0.0.1:9/crm/%7Bcustomer%7D/orders"},
		{"/v1/accounts/a1/items/i%C3%A9", "http://127.0.0.1:9/acc/a1/i/i%C3%A9?v=2"},
	}
	for _, tt := range tests {
		rec := post(g, tt.path, "application/json", `{}`)
		if rec.Code != http.StatusAccepted {
			t.Errorf("POST %s: status %d, want 202; body %s", tt.path, rec.Code, rec.Body)
			continue
		}
		if got := kept.last().URL; got != tt.want {
			t.Errorf("POST %s: upstream %s, want %s", tt.path, got, tt.want)
		}
	}
	before := kept.count()
	for _, path := range []string{"/v1/customers//orders", "/v1/customers/orders", "/v1/accounts/a1/items/"} {
		rec := post(g, path, "application/json", `{}`)
		if p := decodeProblem(t, rec); rec.Code != http.StatusNotFound || p.Type != problemTypeBase+"not-found" {
			t.Errorf("POST %s: status %d %s, want 404 not-found", path, rec.Code, p.Type)
		}
	}
	if kept.count() != before {
		t.Errorf("a request without a parameter's value was submitted")
	}
}
