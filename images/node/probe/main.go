package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) < 2 {
		return errors.New("usage: probe resolve NAME | serve ADDR | get URL")
	}
	switch args[0] {
	case "resolve":
		return retry(ctx, 60*time.Second, func() error {
			addrs, err := net.DefaultResolver.LookupHost(ctx, args[1])
			if err == nil {
				fmt.Printf("%s resolves to %v\n", args[1], addrs)
			}
			return err
		})
	case "serve":
		host, _ := os.Hostname()
		return http.ListenAndServe(args[1], http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "hello from %s to %s\n", host, r.RemoteAddr)
		}))
	case "get":
		return retry(ctx, 60*time.Second, func() error {
			client := http.Client{Timeout: 3 * time.Second}
			resp, err := client.Get(args[1])
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err == nil {
				fmt.Printf("%s: %s", args[1], body)
			}
			return err
		})
	}
	return fmt.Errorf("unknown command %q", args[0])
}

func retry(ctx context.Context, limit time.Duration, f func() error) error {
	deadline := time.Now().Add(limit)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		fmt.Fprintln(os.Stderr, "retrying:", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
