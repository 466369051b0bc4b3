// Command probe is the e2e tests' workload: it resolves names, fetches URLs
// and dials addresses given as arguments, prints what it found, and then
// sleeps, so a test can read its log and check DNS and the pod network from
// inside a pod. `serve` answers HTTP on :8080; `apiprobe=CONFIGMAP` probes
// the API server through its Service every 100 ms and reports to that
// ConfigMap (apiprobe.go).
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	for _, arg := range os.Args[1:] {
		switch {
		case strings.HasPrefix(arg, "resolve="):
			name := strings.TrimPrefix(arg, "resolve=")
			addrs, err := retry(ctx, func() ([]string, error) { return net.DefaultResolver.LookupHost(ctx, name) })
			report("resolve", name, strings.Join(addrs, ","), err)
		case strings.HasPrefix(arg, "get="):
			url := strings.TrimPrefix(arg, "get=")
			code, err := retry(ctx, func() ([]string, error) {
				c := http.Client{Timeout: 3 * time.Second}
				resp, err := c.Get(url)
				if err != nil {
					return nil, err
				}
				resp.Body.Close()
				return []string{resp.Status}, nil
			})
			report("get", url, strings.Join(code, ","), err)
		case strings.HasPrefix(arg, "dial="):
			// One attempt, no retries: how a connection fails, and how
			// fast, is what a test of the network wants to see.
			addr := strings.TrimPrefix(arg, "dial=")
			start := time.Now()
			conn, err := (&net.Dialer{Timeout: 10 * time.Second}).DialContext(ctx, "tcp", addr)
			if err == nil {
				conn.Close()
			}
			fmt.Printf("dial %s %s after %dms: %v\n", addr, outcome(err), time.Since(start).Milliseconds(), err)
		case strings.HasPrefix(arg, "apiprobe="):
			// Runs until the pod is stopped; see apiProbe.
			if err := apiProbe(ctx, strings.TrimPrefix(arg, "apiprobe="), 100*time.Millisecond); err != nil {
				fmt.Println("apiprobe FAIL", err)
				os.Exit(1)
			}
			return
		case arg == "serve":
			go func() {
				_ = http.ListenAndServe(":8080", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
					host, _ := os.Hostname()
					fmt.Fprintln(w, "hello from", host)
				}))
			}()
		}
	}
	<-ctx.Done()
}

func retry(ctx context.Context, f func() ([]string, error)) ([]string, error) {
	var err error
	for i := 0; i < 60; i++ {
		var out []string
		if out, err = f(); err == nil {
			return out, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
	return nil, err
}

// outcome names how a dial ended: connected, refused (RST or ICMP port
// unreachable), unreachable (ICMP host or network unreachable, or no
// route), timeout, or error.
func outcome(err error) string {
	var ne net.Error
	switch {
	case err == nil:
		return "connected"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "unreachable"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	default:
		return "error"
	}
}

func report(kind, target, result string, err error) {
	if err != nil {
		fmt.Printf("%s %s FAIL %v\n", kind, target, err)
		return
	}
	fmt.Printf("%s %s OK %s\n", kind, target, result)
}
