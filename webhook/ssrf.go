package webhook

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Policy says which destinations webhook deliveries may reach.
//
// A callback URL is checked twice: by CheckURL when the job is accepted
// (syntax, scheme, IP literals, localhost names; no DNS), and at every dial
// of a client from NewClient (the address actually connected to, after DNS).
// The dial check is the one that matters: names can resolve to anything, and
// resolve differently the next time.
type Policy struct {
	// AllowHTTP permits plain-http callback URLs (https only when false).
	AllowHTTP bool
	// AllowPrivateNetworks permits loopback, private (RFC 1918), shared
	// (100.64/10), link-local, unique-local and the like. Cloud metadata
	// addresses, unspecified, multicast and broadcast stay refused even then.
	AllowPrivateNetworks bool
	// AllowCIDRs are always permitted, even inside refused ranges (including
	// metadata addresses): for operators whose receivers live on internal
	// networks, and tests.
	AllowCIDRs []netip.Prefix
}

// BlockedError is the error a refused dial returns (wrapped in the url.Error
// chain of http.Client.Do); callers detect it with errors.As to fail a
// delivery at once instead of retrying. CheckIP returns it too.
type BlockedError struct {
	// Addr is the refused address; the zero Addr when the dialled address
	// could not be parsed.
	Addr netip.Addr
	// Reason is a short phrase such as "loopback" or "cloud metadata service".
	Reason string
}

// Error implements error.
func (e *BlockedError) Error() string {
	if !e.Addr.IsValid() {
		return "destination not allowed: " + e.Reason
	}
	return "destination " + e.Addr.String() + " not allowed: " + e.Reason
}

// maxURLLen is the longest callback URL CheckURL accepts, in bytes.
const maxURLLen = 2048

// defaultTimeout replaces a non-positive timeout given to NewClient.
const defaultTimeout = 30 * time.Second

// rule is a refused range. The first rule that contains an address decides.
type rule struct {
	prefix netip.Prefix
	reason string
	// always refuses even with AllowPrivateNetworks.
	always bool
}

func newRule(prefix, reason string, always bool) rule {
	return rule{prefix: netip.MustParsePrefix(prefix), reason: reason, always: always}
}

const reasonMetadata = "cloud metadata service"

// rules lists the refused ranges, most specific first. Addresses reach it
// unmapped (no ::ffff:0:0/96) and without zone. NAT64 (64:ff9b::/96) and
// 6to4 (2002::/16) are not here: their embedded IPv4 address decides.
var rules = []rule{
	// Metadata services first: most sit inside ranges that AllowPrivateNetworks
	// opens, and some look public.
	newRule("169.254.169.254/32", reasonMetadata, true), // AWS, GCP, Azure, OpenStack, ...
	newRule("169.254.170.2/32", reasonMetadata, true),   // AWS ECS task credentials
	newRule("100.100.100.200/32", reasonMetadata, true), // Alibaba Cloud
	newRule("168.63.129.16/32", reasonMetadata, true),   // Azure wire server
	newRule("192.0.0.192/32", reasonMetadata, true),     // Oracle Cloud
	newRule("fd00:ec2::254/128", reasonMetadata, true),  // AWS over IPv6

	newRule("0.0.0.0/8", "unspecified address", true), // Linux connects 0.0.0.0 to the local host
	newRule("127.0.0.0/8", "loopback", false),
	newRule("10.0.0.0/8", "private network", false),
	newRule("172.16.0.0/12", "private network", false),
	newRule("192.168.0.0/16", "private network", false),
	newRule("100.64.0.0/10", "shared address space", false),
	newRule("169.254.0.0/16", "link-local", false),
	newRule("192.0.0.0/24", "IETF protocol assignment", false),
	newRule("192.0.2.0/24", "documentation", false),
	newRule("198.51.100.0/24", "documentation", false),
	newRule("203.0.113.0/24", "documentation", false),
	newRule("198.18.0.0/15", "benchmarking", false),
	newRule("192.88.99.0/24", "6to4 relay anycast", false),
	newRule("224.0.0.0/4", "multicast", true),
	newRule("255.255.255.255/32", "broadcast", true),
	newRule("240.0.0.0/4", "reserved", true),

	newRule("::/128", "unspecified address", true),
	newRule("::1/128", "loopback", false),
	newRule("::/96", "IPv4-compatible address", true), // deprecated; after :: and ::1
	newRule("::ffff:0:0:0/96", "IPv4-translated address", true),
	newRule("64:ff9b:1::/48", "local-use NAT64", true),
	newRule("100::/64", "discard-only", false),
	newRule("2001::/32", "Teredo", true),
	newRule("2001::/23", "IETF protocol assignment", false),
	newRule("2001:db8::/32", "documentation", false),
	newRule("3fff::/20", "documentation", false),
	newRule("fc00::/7", "unique-local", false),
	newRule("fe80::/10", "link-local", false),
	newRule("fec0::/10", "site-local", false),
	newRule("ff00::/8", "multicast", true),
}

var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
	// globalUnicast is where every routable IPv6 address lives today;
	// anything outside it that no rule names is refused as reserved.
	globalUnicast = netip.MustParsePrefix("2000::/3")
)

// CheckIP reports why ip may not be dialled, or nil. A refusal is a
// *BlockedError.
func (p Policy) CheckIP(ip netip.Addr) error {
	if reason := p.refusal(ip); reason != "" {
		return &BlockedError{Addr: ip, Reason: reason}
	}
	return nil
}

// refusal returns why ip may not be dialled, or "".
func (p Policy) refusal(ip netip.Addr) string {
	if !ip.IsValid() {
		return "invalid address"
	}
	// A zoned address is contained in no prefix, so drop the zone.
	addr := ip.WithZone("").Unmap()
	if p.allowed(addr) {
		return ""
	}
	reason, always := p.classify(addr)
	if always || !p.AllowPrivateNetworks {
		return reason
	}
	return ""
}

// allowed reports whether addr is in AllowCIDRs.
func (p Policy) allowed(addr netip.Addr) bool {
	for _, pfx := range p.AllowCIDRs {
		if pfx.Addr().Is4In6() && pfx.Bits() >= 96 {
			// addr is unmapped: so must the range be to contain it.
			pfx = netip.PrefixFrom(pfx.Addr().Unmap(), pfx.Bits()-96)
		}
		if pfx.Contains(addr) {
			return true
		}
	}
	return false
}

// classify returns why addr (unmapped, without zone) is refused, "" when it
// is not, and whether the refusal stands with AllowPrivateNetworks.
func (p Policy) classify(addr netip.Addr) (reason string, always bool) {
	for _, rl := range rules {
		if rl.prefix.Contains(addr) {
			return rl.reason, rl.always
		}
	}
	if addr.Is4() {
		return "", false
	}
	b := addr.As16()
	switch {
	case nat64.Contains(addr):
		return p.embedded("NAT64", netip.AddrFrom4([4]byte(b[12:16])))
	case sixToFour.Contains(addr):
		return p.embedded("6to4", netip.AddrFrom4([4]byte(b[2:6])))
	case !globalUnicast.Contains(addr):
		return "reserved", true
	}
	return "", false
}

// embedded judges an IPv6 address by the IPv4 address inside it. The whole
// policy has already been applied to inner, so a refusal is final.
func (p Policy) embedded(kind string, inner netip.Addr) (reason string, always bool) {
	if r := p.refusal(inner); r != "" {
		return kind + " address of " + inner.String() + " (" + r + ")", true
	}
	return "", false
}

// CheckURL validates a callback URL when a job is accepted. It returns nil or
// an error whose message is a short reason fit to show a client; the message
// never repeats the URL, only a host already known to be a canonical IP
// address. It does not resolve DNS: the dial check of NewClient's client does
// that part.
func (p Policy) CheckURL(raw string) error {
	absolute := "must be an absolute https URL"
	if p.AllowHTTP {
		absolute = "must be an absolute http or https URL"
	}
	if len(raw) > maxURLLen {
		return fmt.Errorf("must be at most %d bytes long", maxURLLen)
	}
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case c <= ' ' || c == 0x7f:
			return errors.New("must not contain spaces or control characters")
		case c >= 0x80:
			return errors.New("must contain only ASCII characters (percent-encode the rest)")
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("is not a valid URL")
	}
	if !u.IsAbs() || u.Opaque != "" || u.Host == "" {
		return errors.New(absolute)
	}
	if !strings.EqualFold(u.Scheme, "https") && !(p.AllowHTTP && strings.EqualFold(u.Scheme, "http")) {
		return errors.New(absolute)
	}
	if u.User != nil {
		return errors.New("must not contain user information")
	}
	if port, ok := portOf(u.Host); ok && !validPort(port) {
		return errors.New("port must be a number from 1 to 65535")
	}

	host := u.Hostname()
	if host == "" {
		return errors.New("must have a host")
	}
	if strings.HasPrefix(u.Host, "[") {
		if strings.Contains(host, "%") {
			return errors.New("must not contain an IPv6 zone")
		}
		addr, err := netip.ParseAddr(host)
		if err != nil || !addr.Is6() {
			return errors.New("host is not a valid IPv6 address")
		}
		return p.checkHostIP(addr)
	}
	if addr, err := netip.ParseAddr(host); err == nil {
		if !addr.Is4() {
			return errors.New("host is not a valid domain name or IP address")
		}
		return p.checkHostIP(addr)
	}
	name := strings.TrimSuffix(host, ".")
	if !validName(name) {
		return errors.New("host is not a valid domain name or IP address")
	}
	if numeric(name) {
		// 2130706433, 0x7f000001, 0177.0.0.1, 127.1, 127.0.0.1. and the like:
		// some resolvers read them as IPv4 addresses, and no real name ends
		// in a number.
		return errors.New("host must be a domain name or a dotted-quad IPv4 address")
	}
	lower := strings.ToLower(name)
	if (lower == "localhost" || strings.HasSuffix(lower, ".localhost")) && !p.AllowPrivateNetworks {
		return errors.New("host must not be localhost or a .localhost name")
	}
	return nil
}

// checkHostIP is CheckIP worded for a client.
func (p Policy) checkHostIP(addr netip.Addr) error {
	if reason := p.refusal(addr); reason != "" {
		return fmt.Errorf("host %s is not allowed: %s", addr, reason)
	}
	return nil
}

// portOf returns the port of a URL's host[:port], and whether a colon
// introduced one (it may be empty, as in "example.com:").
func portOf(hostport string) (string, bool) {
	i := strings.LastIndexByte(hostport, ':')
	if i < 0 || strings.LastIndexByte(hostport, ']') > i {
		return "", false
	}
	return hostport[i+1:], true
}

// validPort reports whether s is a decimal port from 1 to 65535.
func validPort(s string) bool {
	if s == "" || len(s) > 5 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	n, err := strconv.Atoi(s)
	return err == nil && n >= 1 && n <= 65535
}

// validName reports whether name (without its trailing dot) is a DNS name
// of letters, digits, hyphens and underscores, as resolvers accept.
func validName(name string) bool {
	if name == "" || len(name) > 253 {
		return false
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// numeric reports whether the last label of name is a number (decimal, or
// hexadecimal after 0x), which makes it an IPv4 address to URL parsers and
// to inet_aton rather than a name.
func numeric(name string) bool {
	label := name[strings.LastIndexByte(name, '.')+1:]
	digits := "0123456789"
	if len(label) >= 2 && label[0] == '0' && (label[1] == 'x' || label[1] == 'X') {
		label, digits = label[2:], "0123456789abcdefABCDEF"
	} else if label == "" {
		return false
	}
	for i := 0; i < len(label); i++ {
		if !strings.ContainsRune(digits, rune(label[i])) {
			return false
		}
	}
	return true
}

// NewClient returns the HTTP client for deliveries. Every connection's
// address is checked by CheckIP as it is dialled (after DNS, so rebinding
// does not help, and each address of a multi-address name is checked), no
// proxy is used (never one from the environment), redirects are returned
// rather than followed, and timeout bounds the whole exchange (30s when zero
// or less). resolver may be nil for the default resolver.
func (p Policy) NewClient(timeout time.Duration, resolver *net.Resolver) *http.Client {
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	// The client must not change if the caller later changes the slice.
	p.AllowCIDRs = append([]netip.Prefix(nil), p.AllowCIDRs...)
	dialer := &net.Dialer{
		Timeout:   timeout,
		KeepAlive: 30 * time.Second,
		Resolver:  resolver,
		Control:   p.control,
	}
	transport := &http.Transport{
		Proxy:                  nil,
		DialContext:            dialer.DialContext,
		ForceAttemptHTTP2:      true,
		TLSHandshakeTimeout:    min(timeout, 10*time.Second),
		ExpectContinueTimeout:  time.Second,
		MaxIdleConns:           100,
		MaxIdleConnsPerHost:    4,
		IdleConnTimeout:        90 * time.Second,
		MaxResponseHeaderBytes: 64 << 10,
	}
	return &http.Client{
		Transport: transport,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// control is the net.Dialer Control function: it runs after DNS, before
// connect, with the address about to be connected to.
func (p Policy) control(network, address string, _ syscall.RawConn) error {
	if network != "tcp4" && network != "tcp6" {
		return &BlockedError{Reason: "network " + strconv.Quote(network) + " not allowed"}
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &BlockedError{Reason: "unparseable address"}
	}
	return p.CheckIP(ap.Addr())
}
