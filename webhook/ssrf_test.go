package webhook

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

var (
	privatePolicy = Policy{AllowPrivateNetworks: true}
	cidrPolicy    = Policy{AllowCIDRs: []netip.Prefix{
		netip.MustParsePrefix("10.1.0.0/16"),
		netip.MustParsePrefix("169.254.169.254/32"),
		netip.MustParsePrefix("fd00:ec2::254/128"),
		netip.MustParsePrefix("::ffff:192.168.5.0/120"),
	}}
)

func TestCheckIP(t *testing.T) {
	t.Parallel()
	tests := []struct {
		ip     string
		policy Policy
		want   string // the refusal reason; "" when permitted
	}{
		// Public addresses.
		{ip: "8.8.8.8"},
		{ip: "1.1.1.1"},
		{ip: "93.184.215.14"},
		{ip: "11.0.0.1"},
		{ip: "100.63.255.255"},
		{ip: "100.128.0.0"},
		{ip: "172.15.255.255"},
		{ip: "172.32.0.0"},
		{ip: "223.255.255.255"},
		{ip: "::ffff:8.8.8.8"},
		{ip: "2606:4700::1111"},
		{ip: "2001:4860:4860::8888"},
		{ip: "64:ff9b::808:808"},
		{ip: "2002:0808:0808::1"},

		// Refused addresses.
		{ip: "", want: "invalid address"},
		{ip: "0.0.0.0", want: "unspecified address"},
		{ip: "0.1.2.3", want: "unspecified address"},
		{ip: "::", want: "unspecified address"},
		{ip: "127.0.0.1", want: "loopback"},
		{ip: "127.255.255.254", want: "loopback"},
		{ip: "::1", want: "loopback"},
		{ip: "::ffff:127.0.0.1", want: "loopback"},
		{ip: "10.0.0.1", want: "private network"},
		{ip: "172.16.0.1", want: "private network"},
		{ip: "172.31.255.255", want: "private network"},
		{ip: "192.168.1.1", want: "private network"},
		{ip: "100.64.0.1", want: "shared address space"},
		{ip: "169.254.1.1", want: "link-local"},
		{ip: "fe80::1", want: "link-local"},
		{ip: "fe80::1%eth0", want: "link-local"},
		{ip: "192.0.0.8", want: "IETF protocol assignment"},
		{ip: "192.0.2.1", want: "documentation"},
		{ip: "198.51.100.7", want: "documentation"},
		{ip: "203.0.113.9", want: "documentation"},
		{ip: "2001:db8::1", want: "documentation"},
		{ip: "198.18.0.1", want: "benchmarking"},
		{ip: "192.88.99.1", want: "6to4 relay anycast"},
		{ip: "224.0.0.1", want: "multicast"},
		{ip: "239.255.255.250", want: "multicast"},
		{ip: "ff02::1", want: "multicast"},
		{ip: "240.0.0.1", want: "reserved"},
		{ip: "255.255.255.255", want: "broadcast"},
		{ip: "fc00::1", want: "unique-local"},
		{ip: "fd12:3456::1", want: "unique-local"},
		{ip: "fec0::1", want: "site-local"},
		{ip: "100::1", want: "discard-only"},
		{ip: "2001::1", want: "Teredo"},
		{ip: "2001:0:4136:e378:8000:63bf:3fff:fdd2", want: "Teredo"},
		{ip: "::7f00:1", want: "IPv4-compatible address"},
		{ip: "::8.8.8.8", want: "IPv4-compatible address"},
		{ip: "::ffff:0:7f00:1", want: "IPv4-translated address"},
		{ip: "64:ff9b::7f00:1", want: "NAT64 address of 127.0.0.1 (loopback)"},
		{ip: "64:ff9b::a9fe:a9fe", want: "NAT64 address of 169.254.169.254 (cloud metadata service)"},
		{ip: "64:ff9b:1::808:808", want: "local-use NAT64"},
		{ip: "2002:7f00:1::", want: "6to4 address of 127.0.0.1 (loopback)"},
		{ip: "2002:a9fe:a9fe::1", want: "6to4 address of 169.254.169.254 (cloud metadata service)"},
		{ip: "4000::1", want: "reserved"},
		{ip: "169.254.169.254", want: "cloud metadata service"},
		{ip: "::ffff:169.254.169.254", want: "cloud metadata service"},
		{ip: "169.254.170.2", want: "cloud metadata service"},
		{ip: "100.100.100.200", want: "cloud metadata service"},
		{ip: "168.63.129.16", want: "cloud metadata service"},
		{ip: "192.0.0.192", want: "cloud metadata service"},
		{ip: "fd00:ec2::254", want: "cloud metadata service"},

		// AllowPrivateNetworks opens the private kinds only.
		{ip: "127.0.0.1", policy: privatePolicy},
		{ip: "::1", policy: privatePolicy},
		{ip: "10.0.0.1", policy: privatePolicy},
		{ip: "100.64.0.1", policy: privatePolicy},
		{ip: "fd00::1", policy: privatePolicy},
		{ip: "fe80::1%eth0", policy: privatePolicy},
		{ip: "192.0.2.1", policy: privatePolicy},
		{ip: "64:ff9b::a00:1", policy: privatePolicy},
		{ip: "2002:c0a8:101::", policy: privatePolicy},
		{ip: "169.254.169.254", policy: privatePolicy, want: "cloud metadata service"},
		{ip: "100.100.100.200", policy: privatePolicy, want: "cloud metadata service"},
		{ip: "fd00:ec2::254", policy: privatePolicy, want: "cloud metadata service"},
		{ip: "0.0.0.0", policy: privatePolicy, want: "unspecified address"},
		{ip: "::", policy: privatePolicy, want: "unspecified address"},
		{ip: "224.0.0.1", policy: privatePolicy, want: "multicast"},
		{ip: "255.255.255.255", policy: privatePolicy, want: "broadcast"},
		{ip: "240.0.0.1", policy: privatePolicy, want: "reserved"},
		{ip: "::7f00:1", policy: privatePolicy, want: "IPv4-compatible address"},
		{ip: "2001::1", policy: privatePolicy, want: "Teredo"},
		{ip: "64:ff9b::a9fe:a9fe", policy: privatePolicy, want: "NAT64 address of 169.254.169.254 (cloud metadata service)"},
		{ip: "2002:a9fe:a9fe::", policy: privatePolicy, want: "6to4 address of 169.254.169.254 (cloud metadata service)"},

		// AllowCIDRs opens exactly its ranges, metadata included.
		{ip: "10.1.2.3", policy: cidrPolicy},
		{ip: "::ffff:10.1.2.3", policy: cidrPolicy},
		{ip: "64:ff9b::a01:203", policy: cidrPolicy},
		{ip: "192.168.5.7", policy: cidrPolicy},
		{ip: "169.254.169.254", policy: cidrPolicy},
		{ip: "fd00:ec2::254", policy: cidrPolicy},
		{ip: "10.2.0.1", policy: cidrPolicy, want: "private network"},
		{ip: "192.168.6.1", policy: cidrPolicy, want: "private network"},
		{ip: "169.254.170.2", policy: cidrPolicy, want: "cloud metadata service"},
		{ip: "fd00:ec2::255", policy: cidrPolicy, want: "unique-local"},
	}
	for _, tt := range tests {
		name := fmt.Sprintf("%s/%+v", tt.ip, tt.policy)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var addr netip.Addr
			if tt.ip != "" {
				addr = netip.MustParseAddr(tt.ip)
			}
			err := tt.policy.CheckIP(addr)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("CheckIP(%s) = %v, want nil", tt.ip, err)
				}
				return
			}
			var be *BlockedError
			if !errors.As(err, &be) {
				t.Fatalf("CheckIP(%s) = %v, want a *BlockedError", tt.ip, err)
			}
			if be.Reason != tt.want || be.Addr != addr {
				t.Errorf("CheckIP(%s) = {%s %q}, want {%s %q}", tt.ip, be.Addr, be.Reason, addr, tt.want)
			}
		})
	}
}

func TestSSRFControl(t *testing.T) {
	t.Parallel()
	p := Policy{}
	tests := []struct {
		network, address string
		ok               bool
	}{
		{"tcp4", "8.8.8.8:443", true},
		{"tcp6", "[2606:4700::1111]:443", true},
		{"tcp4", "127.0.0.1:443", false},
		{"tcp6", "[::1%lo]:443", false},
		{"tcp6", "[fe80::1%eth0]:443", false},
		{"udp4", "8.8.8.8:53", false},
		{"tcp", "8.8.8.8:443", false},
		{"unix", "/run/docker.sock", false},
		{"tcp4", "8.8.8.8", false},
		{"tcp4", ":443", false},
		{"tcp4", "localhost:443", false},
		{"tcp4", "", false},
	}
	for _, tt := range tests {
		err := p.control(tt.network, tt.address, nil)
		var be *BlockedError
		switch {
		case tt.ok && err != nil:
			t.Errorf("control(%q, %q) = %v, want nil", tt.network, tt.address, err)
		case !tt.ok && !errors.As(err, &be):
			t.Errorf("control(%q, %q) = %v, want a *BlockedError", tt.network, tt.address, err)
		}
	}
}

// checkURLCases are the CheckURL table; the fuzz target seeds from it.
var checkURLCases = []struct {
	url    string
	policy Policy
	want   string // the error message; "" when accepted
}{
	{url: "https://example.com/hook"},
	{url: "https://example.com:8443/hook?x=1#frag"},
	{url: "https://EXAMPLE.com./"},
	{url: "HTTPS://example.com/"},
	{url: "https://8.8.8.8/"},
	{url: "https://[2606:4700::1111]:443/"},
	{url: "https://a_b.example/"},
	{url: "https://xn--bcher-kva.example/"},
	{url: "https://1e100.net/"},
	{url: "https://example.123abc/"},
	{url: "https://localhost.example.com/"},
	{url: "https://notlocalhost/"},
	{url: "https://example.com:1/"},
	{url: "https://example.com:65535/"},
	{url: "https://example.com:00443/"},
	{url: "https://example.com#@127.0.0.1"},
	{url: "https://example.com/a%20b"},
	{url: "https://example.com/" + strings.Repeat("a", maxURLLen-len("https://example.com/"))},
	{url: "http://example.com/", policy: Policy{AllowHTTP: true}},
	{url: "HTTP://example.com/", policy: Policy{AllowHTTP: true}},
	{url: "https://localhost/", policy: privatePolicy},
	{url: "https://a.localhost/", policy: privatePolicy},
	{url: "https://10.0.0.1/", policy: privatePolicy},
	{url: "https://[fd00::1]/", policy: privatePolicy},
	{url: "https://10.1.2.3/", policy: cidrPolicy},
	{url: "https://169.254.169.254/", policy: cidrPolicy},

	{url: "", want: "must be an absolute https URL"},
	{url: "example.com/hook", want: "must be an absolute https URL"},
	{url: "/relative", want: "must be an absolute https URL"},
	{url: "//example.com/hook", want: "must be an absolute https URL"},
	{url: "https:example.com", want: "must be an absolute https URL"},
	{url: "https:///path", want: "must be an absolute https URL"},
	{url: "ftp://example.com/", want: "must be an absolute https URL"},
	{url: "file:///etc/passwd", want: "must be an absolute https URL"},
	{url: "javascript:alert(1)", want: "must be an absolute https URL"},
	{url: "gopher://127.0.0.1:6379/_FLUSHALL", want: "must be an absolute https URL"},
	{url: "http://example.com/", want: "must be an absolute https URL"},
	{url: "ws://example.com/", policy: Policy{AllowHTTP: true}, want: "must be an absolute http or https URL"},
	{url: "https://user@example.com/", want: "must not contain user information"},
	{url: "https://user:pass@example.com/", want: "must not contain user information"},
	{url: "https://@example.com/", want: "must not contain user information"},
	{url: "https://:@example.com/", want: "must not contain user information"},
	{url: "http://example.com@127.0.0.1/", policy: Policy{AllowHTTP: true}, want: "must not contain user information"},
	{url: "https://example.com\\@127.0.0.1/", want: "is not a valid URL"},
	{url: "https://:443/", want: "must have a host"},
	{url: "https://example.com:0/", want: "port must be a number from 1 to 65535"},
	{url: "https://example.com:65536/", want: "port must be a number from 1 to 65535"},
	{url: "https://example.com:4430000/", want: "port must be a number from 1 to 65535"},
	{url: "https://example.com:/", want: "port must be a number from 1 to 65535"},
	{url: "https://[::1]:/", want: "port must be a number from 1 to 65535"},
	{url: "https://example.com:-1/", want: "is not a valid URL"},
	{url: "https://[fe80::1%25eth0]/", want: "must not contain an IPv6 zone"},
	{url: "https://[::1%25lo]:443/", want: "must not contain an IPv6 zone"},
	{url: "https://[fe80::1%25eth0]/", policy: privatePolicy, want: "must not contain an IPv6 zone"},
	{url: "https://[127.0.0.1]/", want: "is not a valid URL"},
	{url: "https://[::1/", want: "is not a valid URL"},
	{url: "https://127.0.0.1/", want: "host 127.0.0.1 is not allowed: loopback"},
	{url: "https://127.0.0.1#@example.com", want: "host 127.0.0.1 is not allowed: loopback"},
	{url: "https://[::1]/", want: "host ::1 is not allowed: loopback"},
	{url: "https://[::ffff:a9fe:a9fe]/", want: "host ::ffff:169.254.169.254 is not allowed: cloud metadata service"},
	{url: "https://[::ffff:127.0.0.1]/", want: "host ::ffff:127.0.0.1 is not allowed: loopback"},
	{url: "https://[::]/", want: "host :: is not allowed: unspecified address"},
	{url: "https://0.0.0.0/", want: "host 0.0.0.0 is not allowed: unspecified address"},
	{url: "https://10.0.0.1/", want: "host 10.0.0.1 is not allowed: private network"},
	{url: "https://[64:ff9b::127.0.0.1]/", want: "host 64:ff9b::7f00:1 is not allowed: NAT64 address of 127.0.0.1 (loopback)"},
	{url: "https://169.254.169.254/latest/meta-data/", want: "host 169.254.169.254 is not allowed: cloud metadata service"},
	{url: "https://169.254.169.254/", policy: privatePolicy, want: "host 169.254.169.254 is not allowed: cloud metadata service"},
	{url: "https://[fd00:ec2::254]/", policy: privatePolicy, want: "host fd00:ec2::254 is not allowed: cloud metadata service"},
	{url: "https://2130706433/", want: "host must be a domain name or a dotted-quad IPv4 address"},
	{url: "https://0x7f000001/", want: "host must be a domain name or a dotted-quad IPv4 address"},
	{url: "https://0177.0.0.1/", want: "host must be a domain name or a dotted-quad IPv4 address"},
	{url: "https://127.1/", want: "host must be a domain name or a dotted-quad IPv4 address"},
	{url: "https://127.0.0.1./", want: "host must be a domain name or a dotted-quad IPv4 address"},
	{url: "https://1.2.3.4.5/", want: "host must be a domain name or a dotted-quad IPv4 address"},
	{url: "https://example.0x10/", want: "host must be a domain name or a dotted-quad IPv4 address"},
	{url: "https://0X7F000001/", want: "host must be a domain name or a dotted-quad IPv4 address"},
	{url: "https://a.b.c.0/", want: "host must be a domain name or a dotted-quad IPv4 address"},
	{url: "https://0x/", want: "host must be a domain name or a dotted-quad IPv4 address"},
	{url: "https://2130706433/", policy: privatePolicy, want: "host must be a domain name or a dotted-quad IPv4 address"},
	{url: "https://localhost/", want: "host must not be localhost or a .localhost name"},
	{url: "https://LOCALHOST./", want: "host must not be localhost or a .localhost name"},
	{url: "https://a.localhost/", want: "host must not be localhost or a .localhost name"},
	{url: "https://a.b.LocalHost.:8443/", want: "host must not be localhost or a .localhost name"},
	{url: "https://localhost/", policy: cidrPolicy, want: "host must not be localhost or a .localhost name"},
	{url: "https://example..com/", want: "host is not a valid domain name or IP address"},
	{url: "https://-example.com/", want: "host is not a valid domain name or IP address"},
	{url: "https://example-.com/", want: "host is not a valid domain name or IP address"},
	{url: "https://%C3%BC.example/", want: "host is not a valid domain name or IP address"},
	{url: "https://%31%32%37.0.0.1/", want: "is not a valid URL"},
	{url: "https://" + strings.Repeat("a", 64) + ".example/", want: "host is not a valid domain name or IP address"},
	{url: "https://bücher.example/", want: "must contain only ASCII characters (percent-encode the rest)"},
	{url: "https://example.com/\u202e", want: "must contain only ASCII characters (percent-encode the rest)"},
	{url: "https://exa mple.com/", want: "must not contain spaces or control characters"},
	{url: "https://example.com/a b", want: "must not contain spaces or control characters"},
	{url: " https://example.com/", want: "must not contain spaces or control characters"},
	{url: "https://example.com/\x00", want: "must not contain spaces or control characters"},
	{url: "https://example.com/\r\nX-Injected: 1", want: "must not contain spaces or control characters"},
	{url: "https://example.com/\t", want: "must not contain spaces or control characters"},
	{url: "https://example.com/\x7f", want: "must not contain spaces or control characters"},
	{url: "https://example.com/" + strings.Repeat("a", maxURLLen), want: "must be at most 2048 bytes long"},
}

func TestCheckURL(t *testing.T) {
	t.Parallel()
	for i, tt := range checkURLCases {
		name := tt.url
		if len(name) > 60 {
			name = name[:60]
		}
		t.Run(fmt.Sprintf("%d/%s", i, name), func(t *testing.T) {
			t.Parallel()
			err := tt.policy.CheckURL(tt.url)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("CheckURL(%q) with %+v = %q, want %q", tt.url, tt.policy, got, tt.want)
			}
		})
	}
}

// canary listens on one port of several loopback addresses, counts every
// connection accepted, and answers each with a minimal HTTP 200 so that a
// leak would look like success to the client.
type canary struct {
	port string
	hits map[netip.Addr]*atomic.Int64
}

// canaryHosts are where a canary listens. Linux routes all of 127/8 to the
// loopback interface; ::1 and the extra IPv4 addresses are skipped where the
// system does not have them.
var canaryHosts = []string{"127.0.0.1", "127.0.0.2", "127.1.2.3", "127.255.255.254", "::1"}

func startCanary(t *testing.T) *canary {
	t.Helper()
	for range 20 {
		if c, ok := tryCanary(t); ok {
			return c
		}
	}
	t.Fatal("no port free on all canary addresses")
	return nil
}

// tryCanary starts a canary on a free port of 127.0.0.1 and the same port
// of the other canaryHosts; it fails if one of them has the port taken.
func tryCanary(t *testing.T) (*canary, bool) {
	first, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(first.Addr().String())
	listeners := []net.Listener{first}
	for _, host := range canaryHosts[1:] {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, port))
		switch {
		case err == nil:
			listeners = append(listeners, ln)
		case errors.Is(err, syscall.EADDRINUSE):
			for _, ln := range listeners {
				ln.Close()
			}
			return nil, false
		default:
			t.Logf("canary: no listener on %s: %v", host, err)
		}
	}

	c := &canary{port: port, hits: map[netip.Addr]*atomic.Int64{}}
	var wg sync.WaitGroup
	for _, ln := range listeners {
		hits := new(atomic.Int64)
		c.hits[netip.MustParseAddrPort(ln.Addr().String()).Addr()] = hits
		wg.Go(func() {
			for {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				hits.Add(1)
				wg.Go(func() { answer200(conn) })
			}
		})
	}
	t.Cleanup(func() {
		for _, ln := range listeners {
			ln.Close()
		}
		wg.Wait()
	})
	return c, true
}

// answer200 reads a request head and answers 200.
func answer200(conn net.Conn) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	var head []byte
	buf := make([]byte, 4096)
	for !bytes.Contains(head, []byte("\r\n\r\n")) && len(head) < 64<<10 {
		n, err := conn.Read(buf)
		head = append(head, buf[:n]...)
		if err != nil {
			return
		}
	}
	_, _ = io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
}

// hitsOn returns the connections counted on host, and whether the canary
// listens there.
func (c *canary) hitsOn(host string) (int64, bool) {
	h, ok := c.hits[netip.MustParseAddr(host)]
	if !ok {
		return 0, false
	}
	return h.Load(), true
}

// DNS message constants for the fake server.
const (
	dnsTypeA    = 1
	dnsTypeAAAA = 28
)

// startDNS starts a UDP DNS server on 127.0.0.1 that answers A and AAAA
// questions from lookup (NXDOMAIN when it returns false), and returns a
// resolver that asks only it. Names reach lookup lower-case and fully
// qualified ("a.example.").
func startDNS(t *testing.T, lookup func(name string, qtype uint16) ([]netip.Addr, bool)) *net.Resolver {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			if resp := dnsResponse(buf[:n], lookup); resp != nil {
				_, _ = conn.WriteTo(resp, from)
			}
		}
	})
	t.Cleanup(func() {
		conn.Close()
		wg.Wait()
	})
	server := conn.LocalAddr().String()
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "udp", server)
		},
	}
}

// dnsResponse answers a DNS query message with one question, or returns nil
// for anything else.
func dnsResponse(query []byte, lookup func(string, uint16) ([]netip.Addr, bool)) []byte {
	if len(query) < 12 || query[2]&0x80 != 0 || binary.BigEndian.Uint16(query[4:6]) != 1 {
		return nil
	}
	var name strings.Builder
	i := 12
	for {
		if i >= len(query) {
			return nil
		}
		n := int(query[i])
		i++
		if n == 0 {
			break
		}
		if n&0xc0 != 0 || i+n > len(query) {
			return nil
		}
		name.WriteString(strings.ToLower(string(query[i : i+n])))
		name.WriteByte('.')
		i += n
	}
	if i+4 > len(query) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(query[i : i+2])
	question := query[12 : i+4]

	addrs, found := lookup(name.String(), qtype)
	var answers [][]byte
	for _, a := range addrs {
		switch {
		case qtype == dnsTypeA && a.Is4():
			b := a.As4()
			answers = append(answers, b[:])
		case qtype == dnsTypeAAAA && a.Is6():
			b := a.As16()
			answers = append(answers, b[:])
		}
	}
	rcode := byte(0)
	if !found {
		rcode = 3 // NXDOMAIN
	}
	// Header: same ID; QR, the query's opcode and RD, AA; RA and rcode.
	resp := []byte{query[0], query[1], 0x80 | query[2]&0x79 | 0x04, 0x80 | rcode, 0, 1}
	resp = binary.BigEndian.AppendUint16(resp, uint16(len(answers)))
	resp = append(resp, 0, 0, 0, 0)
	resp = append(resp, question...)
	for _, rdata := range answers {
		resp = append(resp, 0xc0, 12) // the name: a pointer to the question's
		resp = binary.BigEndian.AppendUint16(resp, qtype)
		resp = append(resp, 0, 1, 0, 0, 0, 0) // class IN, TTL 0
		resp = binary.BigEndian.AppendUint16(resp, uint16(len(rdata)))
		resp = append(resp, rdata...)
	}
	return resp
}

func mustAddrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

// hostile is a URL that must not reach anything.
type hostile struct {
	url string
	// blocked: the dial itself happens and must fail with a *BlockedError
	// (the host is an IP literal or a name that resolves).
	blocked bool
	// dnsOnly: only a resolved name shows the danger, so CheckURL accepts it.
	dnsOnly bool
}

// TestSSRFCanary sends hostile URLs that all lead to a listening canary, in
// different disguises, through a client from NewClient, and checks that the
// canary saw no connection; then it lets the same client reach the canary
// through AllowCIDRs to prove the dial path really ran.
func TestSSRFCanary(t *testing.T) {
	t.Parallel()
	c := startCanary(t)
	var rebindQueries atomic.Int64
	resolver := startDNS(t, func(name string, qtype uint16) ([]netip.Addr, bool) {
		switch name {
		case "loopback.canary.test.":
			return mustAddrs("127.0.0.1"), true
		case "loopback6.canary.test.":
			return mustAddrs("::1"), true
		case "many.canary.test.":
			return mustAddrs("127.0.0.1", "127.0.0.2", "10.0.0.1", "192.0.2.1", "::1", "fd00::1"), true
		case "mapped.canary.test.":
			return mustAddrs("::ffff:127.0.0.1"), true
		case "zero.canary.test.":
			return mustAddrs("0.0.0.0", "::"), true
		case "nat64.canary.test.":
			return mustAddrs("64:ff9b::7f00:1"), true
		case "metadata.canary.test.":
			return mustAddrs("169.254.169.254", "fd00:ec2::254"), true
		case "rebind.canary.test.":
			// A public address for the first A question (a validator
			// resolving ahead of time), loopback for the dial.
			if qtype == dnsTypeA && rebindQueries.Add(1) == 1 {
				return mustAddrs("93.184.215.14"), true
			}
			return mustAddrs("127.0.0.1"), true
		}
		if name == "localhost." || strings.HasSuffix(name, ".localhost.") {
			// As systemd-resolved answers.
			return mustAddrs("127.0.0.1", "::1"), true
		}
		return nil, false
	})

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if got, err := resolver.LookupNetIP(ctx, "ip4", "rebind.canary.test"); err != nil || len(got) != 1 || got[0] != netip.MustParseAddr("93.184.215.14") {
		t.Fatalf("first lookup of the rebinding name = %v, %v; want the public address", got, err)
	}

	p := c.port
	urls := []hostile{
		{url: "http://127.0.0.1:" + p + "/", blocked: true},
		{url: "https://127.0.0.1:" + p + "/", blocked: true},
		{url: "HTTP://127.0.0.1:" + p + "/", blocked: true},
		{url: "http://127.0.0.2:" + p + "/", blocked: true},
		{url: "http://127.1.2.3:" + p + "/", blocked: true},
		{url: "https://127.255.255.254:" + p + "/", blocked: true},
		{url: "http://0.0.0.0:" + p + "/", blocked: true},
		{url: "https://0.0.0.0:" + p + "/", blocked: true},
		{url: "http://0.0.0.1:" + p + "/", blocked: true},
		{url: "http://[::]:" + p + "/", blocked: true},
		{url: "http://[::1]:" + p + "/", blocked: true},
		{url: "https://[::1]:" + p + "/", blocked: true},
		{url: "http://[0000:0000:0000:0000:0000:0000:0000:0001]:" + p + "/", blocked: true},
		{url: "http://[::ffff:127.0.0.1]:" + p + "/", blocked: true},
		{url: "http://[::ffff:7f00:1]:" + p + "/", blocked: true},
		{url: "http://[0:0:0:0:0:ffff:127.0.0.1]:" + p + "/", blocked: true},
		{url: "http://[::ffff:0.0.0.0]:" + p + "/", blocked: true},
		{url: "http://[::127.0.0.1]:" + p + "/", blocked: true},
		{url: "http://[::7f00:1]:" + p + "/", blocked: true},
		{url: "http://[64:ff9b::127.0.0.1]:" + p + "/", blocked: true},
		{url: "http://[64:ff9b::7f00:1]:" + p + "/", blocked: true},
		{url: "http://[2002:7f00:1::]:" + p + "/", blocked: true},
		{url: "http://[2002:7f00:0001::1]:" + p + "/", blocked: true},
		{url: "http://[::1%25lo]:" + p + "/", blocked: true},
		{url: "http://[::1%25%6c%6f]:" + p + "/", blocked: true},
		{url: "http://localhost:" + p + "/", blocked: true},
		{url: "https://localhost:" + p + "/", blocked: true},
		{url: "http://LOCALHOST.:" + p + "/", blocked: true},
		{url: "http://LocalHost:" + p + "/", blocked: true},
		{url: "http://a.localhost:" + p + "/", blocked: true},
		{url: "http://2130706433:" + p + "/"},
		{url: "http://0x7f000001:" + p + "/"},
		{url: "http://0177.0.0.1:" + p + "/"},
		{url: "http://127.1:" + p + "/"},
		{url: "http://127.0.1:" + p + "/"},
		{url: "http://0x7f.0.0.1:" + p + "/"},
		{url: "http://017700000001:" + p + "/"},
		{url: "http://127.000.000.001:" + p + "/"},
		{url: "http://127.0.0.1.:" + p + "/"},
		{url: "http://evil.example@127.0.0.1:" + p + "/", blocked: true},
		{url: "http://user:pass@127.0.0.1:" + p + "/", blocked: true},
		{url: "http://127.0.0.1:" + p + "#@evil.example/", blocked: true},
		{url: "http://127.0.0.1:" + p + "?@evil.example/", blocked: true},
		{url: "http://evil.example\\@127.0.0.1:" + p + "/"},
		{url: "http://%31%32%37.0.0.1:" + p + "/"},
		{url: "http://%6c%6f%63%61%6c%68%6f%73%74:" + p + "/"},
		{url: "http://[%3a%3a1]:" + p + "/"},
		{url: "http://127.0.0.1:" + p + "/\r\n"},
		{url: "http://loopback.canary.test:" + p + "/", blocked: true, dnsOnly: true},
		{url: "https://loopback.canary.test:" + p + "/", blocked: true, dnsOnly: true},
		{url: "http://LOOPBACK.Canary.TEST.:" + p + "/", blocked: true, dnsOnly: true},
		{url: "http://loopback6.canary.test:" + p + "/", blocked: true, dnsOnly: true},
		{url: "http://many.canary.test:" + p + "/", blocked: true, dnsOnly: true},
		{url: "http://mapped.canary.test:" + p + "/", blocked: true, dnsOnly: true},
		{url: "http://zero.canary.test:" + p + "/", blocked: true, dnsOnly: true},
		{url: "http://nat64.canary.test:" + p + "/", blocked: true, dnsOnly: true},
		{url: "http://rebind.canary.test:" + p + "/", blocked: true, dnsOnly: true},

		// These do not lead to the canary but must be refused all the same.
		{url: "http://169.254.169.254/latest/meta-data/", blocked: true},
		{url: "http://[::ffff:169.254.169.254]/latest/meta-data/", blocked: true},
		{url: "http://169.254.170.2/v2/credentials", blocked: true},
		{url: "http://100.100.100.200/latest/meta-data/", blocked: true},
		{url: "http://168.63.129.16/machine", blocked: true},
		{url: "http://192.0.0.192/opc/v2/instance/", blocked: true},
		{url: "http://[fd00:ec2::254]/latest/meta-data/", blocked: true},
		{url: "http://metadata.canary.test/latest/meta-data/", blocked: true, dnsOnly: true},
		{url: "http://10.0.0.1/", blocked: true},
		{url: "http://192.168.0.1/", blocked: true},
		{url: "http://172.16.0.1/", blocked: true},
		{url: "http://100.64.0.1/", blocked: true},
		{url: "http://[fe80::1]/", blocked: true},
		{url: "http://[fd00::1]/", blocked: true},
		{url: "http://192.0.2.1/", blocked: true},
	}

	client := Policy{AllowHTTP: true}.NewClient(2*time.Second, resolver)
	t.Cleanup(client.CloseIdleConnections)
	t.Run("hostile", func(t *testing.T) {
		for _, h := range urls {
			t.Run(h.url, func(t *testing.T) {
				t.Parallel()
				if !h.dnsOnly {
					if err := (Policy{AllowHTTP: true}).CheckURL(h.url); err == nil {
						t.Errorf("CheckURL(%q) accepted it", h.url)
					}
				}
				err := getOK(t, client, h.url)
				if err == nil {
					t.Fatalf("GET %q succeeded", h.url)
				}
				var be *BlockedError
				if h.blocked && !errors.As(err, &be) {
					t.Errorf("GET %q: %v, want a *BlockedError", h.url, err)
				}
			})
		}
	})

	// Metadata stays refused with AllowPrivateNetworks.
	private := Policy{AllowHTTP: true, AllowPrivateNetworks: true}.NewClient(2*time.Second, resolver)
	t.Cleanup(private.CloseIdleConnections)
	for _, u := range []string{"http://169.254.169.254/latest/meta-data/", "http://metadata.canary.test/", "http://[fd00:ec2::254]/"} {
		var be *BlockedError
		if err := getOK(t, private, u); !errors.As(err, &be) {
			t.Errorf("GET %q with AllowPrivateNetworks: %v, want a *BlockedError", u, err)
		}
	}

	// The control case: allowed through AllowCIDRs, the same requests reach
	// the canary. A connection is accepted in order, so once each listener
	// has answered its control request, any earlier leak on it is counted.
	allowed := Policy{AllowHTTP: true, AllowCIDRs: []netip.Prefix{
		netip.MustParsePrefix("127.0.0.0/8"),
		netip.MustParsePrefix("::1/128"),
	}}.NewClient(2*time.Second, resolver)
	t.Cleanup(allowed.CloseIdleConnections)
	for _, host := range canaryHosts {
		if _, ok := c.hitsOn(host); !ok {
			continue
		}
		u := "http://" + net.JoinHostPort(host, p) + "/"
		if err := getOK(t, allowed, u); err != nil {
			t.Fatalf("control GET %q: %v", u, err)
		}
		if n, _ := c.hitsOn(host); n != 1 {
			t.Errorf("canary on %s counted %d connections, want only the control one", host, n)
		}
	}
	if err := getOK(t, allowed, "http://loopback.canary.test:"+p+"/"); err != nil {
		t.Fatalf("control GET through the fake DNS: %v", err)
	}
	if n, _ := c.hitsOn("127.0.0.1"); n != 2 {
		t.Errorf("canary on 127.0.0.1 counted %d connections after the DNS control, want 2", n)
	}
	if _, ok := c.hitsOn("::1"); !ok {
		t.Log("no IPv6 loopback: the canary listened on IPv4 only")
	}
}

// getOK GETs u with client and returns the error, or for a response other
// than 200 an error that says so.
func getOK(t *testing.T, client *http.Client, u string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}

var loopbackOnly = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}

func TestSSRFRedirect(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	t.Cleanup(target.Close)
	client := Policy{AllowHTTP: true, AllowCIDRs: loopbackOnly}.NewClient(2*time.Second, nil)
	t.Cleanup(client.CloseIdleConnections)

	for _, code := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.URL+"/landed", code)
		}))
		t.Cleanup(redirector.Close)
		resp, err := client.Post(redirector.URL, "application/json", strings.NewReader(`{}`))
		if err != nil {
			t.Fatalf("%d: %v", code, err)
		}
		resp.Body.Close()
		if resp.StatusCode != code || resp.Header.Get("Location") != target.URL+"/landed" {
			t.Errorf("got %s, Location %q; want %d to %s/landed", resp.Status, resp.Header.Get("Location"), code, target.URL)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the redirect target got %d requests, want 0", n)
	}
}

// TestSSRFProxy sets the proxy environment variables, so it cannot run
// in parallel.
func TestSSRFProxy(t *testing.T) {
	proxy := startCanary(t)
	proxyURL := "http://127.0.0.1:" + proxy.port
	for _, name := range []string{"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"} {
		t.Setenv(name, proxyURL)
	}
	t.Setenv("NO_PROXY", "")
	t.Setenv("no_proxy", "")

	var hits atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	t.Cleanup(target.Close)
	_, targetPort, _ := net.SplitHostPort(target.Listener.Addr().String())
	// A name, not 127.0.0.1: environment proxies are never used for loopback
	// hosts, which would make this test pass whatever the client does.
	resolver := startDNS(t, func(name string, _ uint16) ([]netip.Addr, bool) {
		return mustAddrs("127.0.0.1"), name == "receiver.proxy.test."
	})

	client := Policy{AllowHTTP: true, AllowCIDRs: loopbackOnly}.NewClient(2*time.Second, resolver)
	t.Cleanup(client.CloseIdleConnections)
	if tr, ok := client.Transport.(*http.Transport); !ok || tr.Proxy != nil {
		t.Fatalf("client transport %T has a Proxy function", client.Transport)
	}
	if err := getOK(t, client, "http://receiver.proxy.test:"+targetPort+"/"); err != nil {
		t.Fatal(err)
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("the receiver got %d requests, want 1", n)
	}
	if n, _ := proxy.hitsOn("127.0.0.1"); n != 0 {
		t.Errorf("the proxy got %d connections, want 0", n)
	}
}

func TestSSRFClientLimits(t *testing.T) {
	t.Parallel()
	client := Policy{}.NewClient(0, nil)
	if client.Timeout != defaultTimeout {
		t.Errorf("Timeout = %v, want %v", client.Timeout, defaultTimeout)
	}
	if client.CheckRedirect == nil || client.CheckRedirect(nil, nil) != http.ErrUseLastResponse {
		t.Error("CheckRedirect does not return http.ErrUseLastResponse")
	}
	tr := client.Transport.(*http.Transport)
	if tr.TLSHandshakeTimeout <= 0 || tr.MaxResponseHeaderBytes <= 0 || tr.MaxIdleConnsPerHost <= 0 || !tr.ForceAttemptHTTP2 {
		t.Errorf("transport limits not set: %+v", tr)
	}

	// The client keeps its own copy of AllowCIDRs.
	cidrs := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	p := Policy{AllowHTTP: true, AllowCIDRs: cidrs}
	c := startCanary(t)
	client = p.NewClient(2*time.Second, nil)
	t.Cleanup(client.CloseIdleConnections)
	cidrs[0] = netip.MustParsePrefix("192.0.2.0/24")
	if err := getOK(t, client, "http://127.0.0.1:"+c.port+"/"); err != nil {
		t.Errorf("GET after the caller changed its AllowCIDRs: %v", err)
	}
}
