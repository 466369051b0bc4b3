package lb

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// apiServer stands in for a kube-apiserver: HTTPS on a loopback address,
// /readyz as ready says, /name answering which one it is.
type apiServer struct {
	name  string
	ip    string
	ready atomic.Bool
	srv   *httptest.Server
}

// newAPIServers starts one server per loopback address, all on one port,
// as control-plane containers all serve 6443 on their own IPs.
func newAPIServers(t *testing.T, ips ...string) (port string, servers []*apiServer) {
	t.Helper()
	for i, ip := range ips {
		addr := ip + ":0"
		if port != "" {
			addr = net.JoinHostPort(ip, port)
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Skipf("cannot listen on %s (loopback aliases are needed): %v", addr, err)
		}
		if port == "" {
			_, port, _ = net.SplitHostPort(ln.Addr().String())
		}
		s := &apiServer{name: fmt.Sprintf("cp%d", i+1), ip: ip}
		s.ready.Store(true)
		mux := http.NewServeMux()
		mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
			if !s.ready.Load() {
				http.Error(w, "[-]etcd failed", http.StatusInternalServerError)
				return
			}
			_, _ = io.WriteString(w, "ok")
		})
		mux.HandleFunc("/name", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, s.name) })
		mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) { _, _ = io.Copy(w, r.Body) })
		s.srv = httptest.NewUnstartedServer(mux)
		s.srv.Listener = ln
		// Handshakes cut by the checks' and tests' closes are expected.
		s.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
		s.srv.StartTLS()
		t.Cleanup(s.srv.Close)
		servers = append(servers, s)
	}
	return port, servers
}

// fakeResolver answers from a map the test changes as it goes, like Docker's
// DNS as containers come and go.
type fakeResolver struct {
	mu    sync.Mutex
	hosts map[string][]string
	err   error
}

func (r *fakeResolver) set(host string, ips ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hosts[host] = ips
}

func (r *fakeResolver) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.err = err
}

func (r *fakeResolver) LookupHost(_ context.Context, host string) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return nil, r.err
	}
	ips, ok := r.hosts[host]
	if !ok || len(ips) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return append([]string(nil), ips...), nil
}

// syncBuffer collects log lines from several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

const testInterval = 50 * time.Millisecond

// startLB runs a balancer over "apiservers:<port>" and returns its address.
func startLB(t *testing.T, r Resolver, port string) (addr string, logs *syncBuffer) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs = &syncBuffer{}
	l, err := New(Options{
		Listener: ln, Backends: []string{net.JoinHostPort("apiservers", port)}, Resolver: r,
		Interval: testInterval, CheckTimeout: 200 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if t.Failed() {
			t.Logf("load balancer log:\n%s", logs.String())
		}
	})
	return ln.Addr().String(), logs
}

// client is an HTTPS client that opens a new connection, through the
// balancer, for every request.
func client() *http.Client {
	return &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // test servers
		DisableKeepAlives: true,
	}}
}

func get(c *http.Client, lb, path string) (string, error) {
	resp, err := c.Get("https://" + lb + path)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return string(body), err
}

// names asks n times which server answers and counts each.
func names(t *testing.T, lb string, n int) map[string]int {
	t.Helper()
	c := client()
	got := map[string]int{}
	for range n {
		name, err := get(c, lb, "/name")
		if err != nil {
			t.Fatalf("GET /name through the balancer: %v", err)
		}
		got[name]++
	}
	return got
}

// eventually retries cond for up to d.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// onlyTo says whether 6 connections in a row go to exactly the servers
// named. A connection cut because its backend went away counts as a no:
// clients reconnect.
func onlyTo(lb string, want ...string) func() bool {
	return func() bool {
		c := client()
		got := map[string]int{}
		for range 6 {
			name, err := get(c, lb, "/name")
			if err != nil {
				return false
			}
			got[name]++
		}
		if len(got) != len(want) {
			return false
		}
		for _, w := range want {
			if got[w] == 0 {
				return false
			}
		}
		return true
	}
}

func TestConnectionsAreSpreadOverReadyBackendsAndProxiedBothWays(t *testing.T) {
	port, _ := newAPIServers(t, "127.0.0.11", "127.0.0.12")
	r := &fakeResolver{hosts: map[string][]string{"apiservers": {"127.0.0.11", "127.0.0.12"}}}
	lb, _ := startLB(t, r, port)

	eventually(t, 2*time.Second, "both backends get connections", onlyTo(lb, "cp1", "cp2"))

	// A large body goes up and comes back down through the same proxied
	// connection: both directions, and the half-close in between.
	body := strings.Repeat("0123456789", 100_000)
	resp, err := client().Post("https://"+lb+"/echo", "text/plain", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	echoed, _ := io.ReadAll(resp.Body)
	if string(echoed) != body {
		t.Fatalf("echo through the balancer returned %d bytes, want %d", len(echoed), len(body))
	}
}

func TestABackendWhoseReadyzFailsIsDroppedWithinTwoSeconds(t *testing.T) {
	port, s := newAPIServers(t, "127.0.0.21", "127.0.0.22")
	r := &fakeResolver{hosts: map[string][]string{"apiservers": {"127.0.0.21", "127.0.0.22"}}}
	lb, logs := startLB(t, r, port)
	eventually(t, 2*time.Second, "both backends get connections", onlyTo(lb, "cp1", "cp2"))

	// A long-lived connection to each backend, as watches would be. One to
	// each keeps their open-connection counts equal, so new connections
	// still alternate between them and only a dropped backend stops
	// getting any (the balancer prefers the backend with fewer).
	long := holdConnTo(t, lb, "cp1")
	holdConnTo(t, lb, "cp2")
	eventually(t, 2*time.Second, "both backends still get connections", onlyTo(lb, "cp1", "cp2"))

	s[0].ready.Store(false)
	start := time.Now()
	eventually(t, 2*time.Second, "cp1 stops getting connections", onlyTo(lb, "cp2"))
	t.Logf("dropped after %s", time.Since(start).Round(10*time.Millisecond))
	if !strings.Contains(logs.String(), "Backend down: readyz answered 500 Internal Server Error") {
		t.Errorf("no log line says why cp1 went down:\n%s", logs.String())
	}
	// Its open connection is closed too, so the client reconnects elsewhere.
	_ = long.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := long.Read(make([]byte, 1)); err == nil {
		t.Error("the connection to the backend that went down is still open")
	}

	s[0].ready.Store(true)
	eventually(t, 2*time.Second, "cp1 is back", onlyTo(lb, "cp1", "cp2"))
}

// holdConnTo opens connections through the balancer until one is served
// by the named backend, and keeps that one open until the test ends.
func holdConnTo(t *testing.T, lb, name string) net.Conn {
	t.Helper()
	for range 20 {
		c, err := tls.Dial("tcp", lb, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // test servers
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(c, "GET /name HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(io.LimitReader(resp.Body, int64(len(name))))
		_ = resp.Body.Close() // the connection stays open: the body was read whole
		if string(got) == name {
			t.Cleanup(func() { c.Close() })
			return c
		}
		c.Close()
	}
	t.Fatalf("no connection through the balancer reached %s", name)
	return nil
}

func TestBackendsFollowTheDNSAnswer(t *testing.T) {
	port, _ := newAPIServers(t, "127.0.0.31", "127.0.0.32")
	r := &fakeResolver{hosts: map[string][]string{"apiservers": {"127.0.0.31"}}}
	lb, logs := startLB(t, r, port)
	eventually(t, 2*time.Second, "cp1 gets connections", onlyTo(lb, "cp1"))

	// A second control plane joins: its container carries the alias too.
	r.set("apiservers", "127.0.0.31", "127.0.0.32")
	eventually(t, 2*time.Second, "the new backend gets connections", onlyTo(lb, "cp1", "cp2"))

	// A lookup that fails for another reason keeps what was known.
	r.fail(&net.DNSError{Err: "i/o timeout", Name: "apiservers", IsTimeout: true})
	time.Sleep(4 * testInterval)
	if got := names(t, lb, 6); len(got) != 2 {
		t.Errorf("a failed lookup changed the backends: %v", got)
	}
	if !strings.Contains(logs.String(), "Keeping the last backends") {
		t.Errorf("no log line says the lookup failed:\n%s", logs.String())
	}
	r.fail(nil)

	// The old one is removed.
	r.set("apiservers", "127.0.0.32")
	eventually(t, 2*time.Second, "the removed backend gets no connections", onlyTo(lb, "cp2"))
	if !strings.Contains(logs.String(), "Backend removed") {
		t.Errorf("no log line says the backend was removed:\n%s", logs.String())
	}
}

func TestWithNoBackendReadyConnectionsGoToEveryBackendFound(t *testing.T) {
	port, s := newAPIServers(t, "127.0.0.41", "127.0.0.42")
	for _, srv := range s {
		srv.ready.Store(false)
	}
	r := &fakeResolver{hosts: map[string][]string{"apiservers": {"127.0.0.41", "127.0.0.42"}}}
	lb, logs := startLB(t, r, port)
	time.Sleep(3 * testInterval)
	eventually(t, 2*time.Second, "connections go to both unready backends", onlyTo(lb, "cp1", "cp2"))
	if !strings.Contains(logs.String(), "No backend is ready") {
		t.Errorf("no log line says connections fall back to every backend:\n%s", logs.String())
	}

	s[1].ready.Store(true)
	eventually(t, 2*time.Second, "only the ready backend gets connections", onlyTo(lb, "cp2"))
}

func TestConnectionsSkipABackendThatRefusesThem(t *testing.T) {
	port, _ := newAPIServers(t, "127.0.0.51")
	// 127.0.0.52 resolves but nothing listens there; with no backend ready
	// yet both are candidates, and the dead one must not cost a connection.
	r := &fakeResolver{hosts: map[string][]string{"apiservers": {"127.0.0.51", "127.0.0.52"}}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l, err := New(Options{Listener: ln, Backends: []string{net.JoinHostPort("apiservers", port)}, Resolver: r, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = l.Serve(ctx) }()
	eventually(t, 2*time.Second, "the balancer found both backends", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(l.backends) == 2
	})
	for i := range 4 {
		if got := names(t, ln.Addr().String(), 1); got["cp1"] != 1 {
			t.Fatalf("connection %d: got %v", i, got)
		}
	}
}

func TestNewRefusesBackendsThatAreNotHostPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, b := range []string{"apiservers", ":6443", "apiservers:"} {
		if _, err := New(Options{Listener: ln, Backends: []string{b}}); err == nil {
			t.Errorf("backend %q was accepted", b)
		}
	}
	if _, err := New(Options{Listener: ln, Backends: []string{"a:" + strconv.Itoa(6443)}}); err != nil {
		t.Errorf("a valid backend was refused: %v", err)
	}
}
