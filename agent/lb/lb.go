package lb

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// Resolver finds the addresses behind a name; *net.Resolver is one. In a
// container it asks the engine's embedded DNS, which answers with every
// container that carries the name as a network alias.
type Resolver interface {
	LookupHost(ctx context.Context, host string) ([]string, error)
}

// Options configure a load balancer.
type Options struct {
	// Listener is where clients connect.
	Listener net.Listener
	// Backends are host:port pairs; each host is resolved every Interval
	// and every address it resolves to is a backend on that port.
	Backends []string
	// Resolver resolves the backends' hosts. Default net.DefaultResolver.
	Resolver Resolver
	// Interval is how often the hosts are resolved and every backend is
	// checked. Default 500ms.
	Interval time.Duration
	// CheckTimeout bounds one readiness check. Default 1s.
	CheckTimeout time.Duration
	// FailAfter is how many checks in a row must fail before a ready
	// backend gets no new connections: one lost check is not a dead API
	// server. Default 2, which with the default interval drops a backend
	// within 1-2s of its /readyz failing.
	FailAfter int
	// DialTimeout bounds connecting to a backend. Default 3s.
	DialTimeout time.Duration
	// Logger receives one line per decision. Default: discard.
	Logger *slog.Logger
}

// LB is a running load balancer's state.
type LB struct {
	o      Options
	hosts  []hostPort
	client *http.Client

	mu       sync.Mutex
	backends map[string]*backend // by address
	next     int                 // round-robin start among equals
	fallback bool                // no backend was ready, at the last look
	stale    bool                // the last lookup failed
}

type hostPort struct{ host, port string }

type backend struct {
	addr string
	// ready: the last check passed, or fewer than FailAfter have failed
	// since one did. A backend no check has passed yet is not ready.
	ready    bool
	fails    int
	checking bool
	// conns are the connections open to it: upstream side to client side.
	conns map[net.Conn]net.Conn
}

// New checks the options and fills in defaults.
func New(o Options) (*LB, error) {
	if o.Listener == nil {
		return nil, errors.New("no listener")
	}
	if len(o.Backends) == 0 {
		return nil, errors.New("no backends: give at least one host:port")
	}
	l := &LB{backends: map[string]*backend{}}
	for _, b := range o.Backends {
		host, port, err := net.SplitHostPort(b)
		if err != nil || host == "" || port == "" {
			return nil, fmt.Errorf("backend %q is not host:port", b)
		}
		l.hosts = append(l.hosts, hostPort{host, port})
	}
	if o.Resolver == nil {
		o.Resolver = net.DefaultResolver
	}
	if o.Interval <= 0 {
		o.Interval = 500 * time.Millisecond
	}
	if o.CheckTimeout <= 0 {
		o.CheckTimeout = time.Second
	}
	if o.FailAfter <= 0 {
		o.FailAfter = 2
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 3 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	l.o = o
	l.client = &http.Client{
		Timeout: o.CheckTimeout,
		Transport: &http.Transport{
			// The check only decides where connections go; the clients
			// verify the API server themselves, end to end.
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // see above
			// A fresh connection each time, so a check sees what a new
			// client would.
			DisableKeepAlives: true,
		},
	}
	return l, nil
}

// Serve resolves, checks and proxies until ctx ends, then closes the
// listener and every connection.
func (l *LB) Serve(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Connections that come before the first check go to whatever the
	// names resolve to.
	l.refresh(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		l.watch(ctx)
	}()
	go func() {
		<-ctx.Done()
		_ = l.o.Listener.Close()
	}()
	l.o.Logger.Info("Listening", "address", l.o.Listener.Addr().String(), "backends", strings.Join(l.o.Backends, ","))
	var err error
	for {
		var c net.Conn
		c, err = l.o.Listener.Accept()
		if err != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.proxy(ctx, c)
		}()
	}
	cancel()
	l.closeAll()
	wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("accepting connections: %w", err)
}

// watch resolves the hosts and checks the backends every interval.
func (l *LB) watch(ctx context.Context) {
	t := time.NewTicker(l.o.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		l.refresh(ctx)
	}
}

func (l *LB) refresh(ctx context.Context) {
	addrs, err := l.resolve(ctx)
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case err != nil && !l.stale:
		l.o.Logger.Info("Keeping the last backends: resolving failed", "error", err.Error())
	case err == nil && l.stale:
		l.o.Logger.Info("Resolving works again")
	}
	l.stale = err != nil
	if err == nil {
		for a := range addrs {
			if _, known := l.backends[a]; !known {
				l.o.Logger.Info("Backend found: checking it before sending it connections", "backend", a)
				l.backends[a] = &backend{addr: a, conns: map[net.Conn]net.Conn{}}
			}
		}
		for a, b := range l.backends {
			if !addrs[a] {
				l.o.Logger.Info("Backend removed: its name no longer resolves to it", "backend", a, "connectionsClosed", len(b.conns))
				b.closeConns()
				delete(l.backends, a)
			}
		}
	}
	for _, b := range l.backends {
		if !b.checking {
			b.checking = true
			go l.check(ctx, b)
		}
	}
	l.noteFallback()
}

// resolve returns every backend address, or an error when a lookup failed
// for a reason other than the name not existing, and the last answer
// should stand.
func (l *LB) resolve(ctx context.Context) (map[string]bool, error) {
	ctx, cancel := context.WithTimeout(ctx, l.o.CheckTimeout)
	defer cancel()
	addrs := map[string]bool{}
	for _, hp := range l.hosts {
		ips, err := l.o.Resolver.LookupHost(ctx, hp.host)
		var dnsErr *net.DNSError
		switch {
		case err == nil:
		case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
			// No container carries the name right now: no backends.
			continue
		default:
			return nil, err
		}
		for _, ip := range ips {
			addrs[net.JoinHostPort(ip, hp.port)] = true
		}
	}
	return addrs, nil
}

// check asks one backend's /readyz and records the answer.
func (l *LB) check(ctx context.Context, b *backend) {
	reason := ""
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+b.addr+"/readyz", nil)
	if err == nil {
		var resp *http.Response
		resp, err = l.client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				reason = "readyz answered " + resp.Status
			}
		}
	}
	if err != nil {
		reason = "readyz failed: " + err.Error()
	}
	if ctx.Err() != nil {
		return
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	b.checking = false
	if l.backends[b.addr] != b {
		return // removed meanwhile
	}
	if reason == "" {
		b.fails = 0
		if !b.ready {
			b.ready = true
			l.o.Logger.Info("Backend up: readyz answered 200 OK", "backend", b.addr)
		}
		l.noteFallback()
		return
	}
	b.fails++
	if b.ready && b.fails >= l.o.FailAfter {
		b.ready = false
		closed := 0
		// Open connections move too, unless there is nowhere better to go:
		// a watch on an API server that lost etcd never ends by itself.
		if l.readyCount() > 0 {
			closed = len(b.conns)
			b.closeConns()
		}
		l.o.Logger.Info("Backend down: "+reason, "backend", b.addr, "failedChecks", b.fails, "connectionsClosed", closed)
	}
	l.noteFallback()
}

func (l *LB) readyCount() int {
	n := 0
	for _, b := range l.backends {
		if b.ready {
			n++
		}
	}
	return n
}

// noteFallback logs when the balancer starts or stops sending connections
// to every backend because none is ready. The caller holds l.mu.
func (l *LB) noteFallback() {
	fallback := l.readyCount() == 0
	if fallback == l.fallback {
		return
	}
	l.fallback = fallback
	if fallback {
		l.o.Logger.Info("No backend is ready: sending connections to every backend found rather than refusing them", "backends", len(l.backends))
	} else {
		l.o.Logger.Info("A backend is ready: sending connections to ready backends only", "ready", l.readyCount())
	}
}

// candidates are the backends a new connection may go to, best first:
// ready ones (or all, when none is), fewest open connections first, ties
// taken in turn.
func (l *LB) candidates() []*backend {
	l.mu.Lock()
	defer l.mu.Unlock()
	all := make([]*backend, 0, len(l.backends))
	for _, b := range l.backends {
		all = append(all, b)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].addr < all[j].addr })
	var out []*backend
	for _, b := range all {
		if b.ready {
			out = append(out, b)
		}
	}
	if len(out) == 0 {
		out = all
	}
	if len(out) == 0 {
		return nil
	}
	start := l.next % len(out)
	l.next++
	out = append(out[start:], out[:start]...)
	sort.SliceStable(out, func(i, j int) bool { return len(out[i].conns) < len(out[j].conns) })
	return out
}

// proxy connects c to a backend and copies both ways until both sides
// are done.
func (l *LB) proxy(ctx context.Context, c net.Conn) {
	defer c.Close()
	cands := l.candidates()
	// None found yet (no control plane carries the name this moment):
	// hold the client a little rather than refuse it.
	for wait := time.Now().Add(l.o.DialTimeout); len(cands) == 0 && time.Now().Before(wait); cands = l.candidates() {
		select {
		case <-ctx.Done():
			return
		case <-time.After(l.o.Interval):
		}
	}
	var up net.Conn
	var b *backend
	for _, cand := range cands {
		d := net.Dialer{Timeout: l.o.DialTimeout}
		conn, err := d.DialContext(ctx, "tcp", cand.addr)
		if err != nil {
			// Only news while its checks pass: a backend that is down
			// (tried only for want of a ready one) would log every client.
			if l.isReady(cand) {
				l.o.Logger.Info("Trying the next backend: connecting to a ready one failed", "backend", cand.addr, "error", err.Error())
			}
			continue
		}
		if l.track(cand, conn, c) {
			up, b = conn, cand
			break
		}
		_ = conn.Close() // removed while we dialled
	}
	if up == nil {
		return // closing is all a TCP proxy can tell the client
	}
	defer l.untrack(b, up)

	done := make(chan struct{}, 2)
	copyHalf := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		// Pass the end of one direction on, and let the other finish.
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		} else {
			_ = dst.Close()
		}
		done <- struct{}{}
	}
	go copyHalf(up, c)
	go copyHalf(c, up)
	<-done
	<-done
}

func (l *LB) isReady(b *backend) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return b.ready
}

func (l *LB) track(b *backend, up, client net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.backends[b.addr] != b {
		return false
	}
	b.conns[up] = client
	return true
}

func (l *LB) untrack(b *backend, conn net.Conn) {
	_ = conn.Close()
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(b.conns, conn)
}

func (l *LB) closeAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, b := range l.backends {
		b.closeConns()
	}
}

// closeConns closes both sides of every connection to b, which ends both
// copies; the client reconnects, to another backend. The caller holds l.mu.
func (b *backend) closeConns() {
	for up, client := range b.conns {
		_ = up.Close()
		_ = client.Close()
	}
}
