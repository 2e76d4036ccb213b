package redisconn_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/internal/redisconn"
	"github.com/asyncgw/asyncgw/internal/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

func TestNewErrors(t *testing.T) {
	t.Parallel()
	sentinel := redisconn.Sentinel{MasterName: "m", Addrs: []string{"127.0.0.1:26379"}}
	cluster := redisconn.Cluster{Addrs: []string{"127.0.0.1:7000"}}
	for _, tt := range []struct {
		name string
		cfg  redisconn.Config
		want string
	}{
		{"none", redisconn.Config{}, "none of redis.url, redis.sentinel and redis.cluster is set"},
		{"both", redisconn.Config{URL: "redis://127.0.0.1:6379/0", Sentinel: sentinel}, "redis.url, redis.sentinel: give one of them, not both"},
		{"bad url", redisconn.Config{URL: "redis://127.0.0.1:6379/x"}, "redis.url: "},
		{"no master name", redisconn.Config{Sentinel: redisconn.Sentinel{Addrs: sentinel.Addrs}}, "redis.sentinel.master_name: required"},
		{"no addrs", redisconn.Config{Sentinel: redisconn.Sentinel{MasterName: "m"}}, "redis.sentinel.addrs: at least one"},
		{"bad addr", redisconn.Config{Sentinel: redisconn.Sentinel{MasterName: "m", Addrs: []string{"26379"}}}, `redis.sentinel.addrs[0]: "26379" must be host:port`},
		{"tls on redis://", redisconn.Config{URL: "redis://h:6379/0", TLS: redisconn.TLS{ServerName: "h"}}, "redis.tls: applies to a rediss:// URL only"},
		{"tls enabled on url", redisconn.Config{URL: "rediss://h:6379/0", TLS: redisconn.TLS{Enabled: true}}, "redis.tls.enabled: with redis.url"},
		{"sentinel tls off", redisconn.Config{Sentinel: sentinel, TLS: redisconn.TLS{CAFile: "ca.pem"}}, "redis.tls: set redis.tls.enabled: true"},
		{"ca file missing", redisconn.Config{URL: "rediss://h:6379/0", TLS: redisconn.TLS{CAFile: "/nowhere/ca.pem"}}, "redis.tls.ca_file: open /nowhere/ca.pem"},
		{"url and cluster", redisconn.Config{URL: "redis://127.0.0.1:6379/0", Cluster: cluster}, "redis.url, redis.cluster: give one of them, not both"},
		{"sentinel and cluster", redisconn.Config{Sentinel: sentinel, Cluster: cluster}, "redis.sentinel, redis.cluster: give one of them, not both"},
		{"all three", redisconn.Config{URL: "redis://127.0.0.1:6379/0", Sentinel: sentinel, Cluster: cluster}, "redis.url, redis.sentinel, redis.cluster: give one of them, not all three"},
		{"cluster without addrs", redisconn.Config{Cluster: redisconn.Cluster{Password: "p"}}, "redis.cluster.addrs: at least one node host:port is required"},
		{"cluster bad addr", redisconn.Config{Cluster: redisconn.Cluster{Addrs: []string{"127.0.0.1:7000", "7001"}}}, `redis.cluster.addrs[1]: "7001" must be host:port`},
		{"cluster tls off", redisconn.Config{Cluster: cluster, TLS: redisconn.TLS{CAFile: "ca.pem"}}, "redis.tls: set redis.tls.enabled: true to use TLS with redis.cluster"},
		{"cluster ca file missing", redisconn.Config{Cluster: cluster, TLS: redisconn.TLS{Enabled: true, CAFile: "/nowhere/ca.pem"}}, "redis.tls.ca_file: open /nowhere/ca.pem"},
		{"ca file not pem", redisconn.Config{URL: "rediss://h:6379/0", TLS: redisconn.TLS{CAFile: writeTemp(t, "junk")}}, "holds no PEM certificate"},
	} {
		_, err := redisconn.New(tt.cfg)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
		if tt.name == "none" && !errors.Is(err, redisconn.ErrNoRedis) {
			t.Errorf("none: %v is not ErrNoRedis", err)
		}
	}
}

func writeTemp(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestClientOptions checks the options asyncgw sets on every client of
// the URL form, and that the URL's own client name wins.
func TestClientOptions(t *testing.T) {
	t.Parallel()
	srv := redistest.Shared(t)
	conn, err := redisconn.New(redisconn.Config{URL: srv.URL()})
	if err != nil {
		t.Fatal(err)
	}
	if conn.Sentinel() || conn.Cluster() || conn.Key() != "redis.url" || conn.Addr() != srv.Addr() {
		t.Errorf("sentinel %v, key %q, addr %q", conn.Sentinel(), conn.Key(), conn.Addr())
	}
	c := conn.Client(redisconn.Options{ClientName: "asyncgw-test", PoolSize: 77})
	defer c.Close()
	o := c.(*redis.Client).Options()
	if o.ClientName != "asyncgw-test" || o.PoolSize != 77 || o.Protocol != 2 || !o.ContextTimeoutEnabled || o.DialerRetries != 2 || o.MaxRetries < 1 {
		t.Errorf("options %+v", o)
	}
	if got := c.ClientGetName(t.Context()).Val(); got != "asyncgw-test" {
		t.Errorf("CLIENT GETNAME %q", got)
	}
	fast := conn.Client(redisconn.Options{NoRetries: true})
	defer fast.Close()
	if o := fast.(*redis.Client).Options(); o.MaxRetries > 0 || o.DialerRetries != 1 { // go-redis stores -1 as 0
		t.Errorf("no-retries client: MaxRetries %d, DialerRetries %d", o.MaxRetries, o.DialerRetries)
	}
	named, _ := redisconn.New(redisconn.Config{URL: srv.URL() + "?client_name=mine"})
	nc := named.Client(redisconn.Options{ClientName: "asyncgw"})
	defer nc.Close()
	if got := nc.(*redis.Client).Options().ClientName; got != "mine" {
		t.Errorf("client name %q, want the URL's", got)
	}
	if named.Switches(nil) != nil || named.Switches(nil).Switched() != nil {
		t.Errorf("the URL form has switches")
	}
}

func TestCheckMaster(t *testing.T) {
	t.Parallel()
	master := redistest.Start(t)
	host, port, _ := net.SplitHostPort(master.Addr())
	replica := redistest.Start(t, redistest.WithArgs("--replicaof", host, port))
	noRole := redistest.Start(t, redistest.WithArgs("--rename-command", "ROLE", ""))

	if err := redisconn.CheckMaster(t.Context(), master.Client(t)); err != nil {
		t.Errorf("master: %v", err)
	}
	var nm *redisconn.NotMasterError
	err := redisconn.CheckMaster(t.Context(), replica.Client(t))
	if !errors.As(err, &nm) || nm.Role != "slave" || err.Error() != "redis is not a master (role slave)" || nm.Reason() != err.Error() {
		t.Errorf("replica: %v", err)
	}
	if err := redisconn.CheckMaster(t.Context(), noRole.Client(t)); err != nil {
		t.Errorf("ROLE refused: %v, want nil (it answered)", err)
	}
	c := master.Client(t)
	master.Kill()
	err = redisconn.CheckMaster(t.Context(), c)
	if err == nil || errors.As(err, &nm) {
		t.Errorf("killed: %v, want an error that is not NotMasterError", err)
	}
}

// TestTLSCAFile connects with rediss:// to a Redis whose certificate a
// private CA signed: with redis.tls.ca_file it works; with the system's
// roots it fails.
func TestTLSCAFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca, cert, key := makeCerts(t, dir)
	tlsPort := freePort(t)
	redistest.Start(t, redistest.WithArgs("--tls-port", strconv.Itoa(tlsPort), "--tls-cert-file", cert, "--tls-key-file", key,
		"--tls-ca-cert-file", ca, "--tls-auth-clients", "no"))
	url := "rediss://127.0.0.1:" + strconv.Itoa(tlsPort) + "/0"

	conn, err := redisconn.New(redisconn.Config{URL: url, TLS: redisconn.TLS{CAFile: ca, ServerName: "redis.test"}})
	if err != nil {
		t.Fatal(err)
	}
	c := conn.Client(redisconn.Options{})
	defer c.Close()
	if err := c.Set(t.Context(), "k", "v", 0).Err(); err != nil {
		t.Errorf("SET over TLS with the CA file: %v", err)
	}
	sys, _ := redisconn.New(redisconn.Config{URL: url})
	sc := sys.Client(redisconn.Options{})
	defer sc.Close()
	if err := sc.Ping(t.Context()).Err(); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("PING with the system's roots: %v, want a certificate error", err)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// makeCerts writes a CA and a server certificate for redis.test that it
// signed, and returns their files and the server's key file.
func makeCerts(t *testing.T, dir string) (ca, cert, key string) {
	t.Helper()
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "asyncgw test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "redis.test"}, DNSNames: []string{"redis.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(srvKey)
	return write("ca.pem", "CERTIFICATE", caDER), write("server.pem", "CERTIFICATE", srvDER), write("server.key", "EC PRIVATE KEY", keyDER)
}
