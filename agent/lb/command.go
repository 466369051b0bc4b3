package lb

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"
)

// Run is `agent lb`: it parses args and serves until ctx ends.
func Run(ctx context.Context, args []string, logOut io.Writer) error {
	fs := flag.NewFlagSet("agent lb", flag.ContinueOnError)
	fs.SetOutput(logOut)
	listen := fs.String("listen", ":6443", "address clients connect to")
	backends := fs.String("backends", "", "comma-separated host:port backends; each host is resolved every interval, and every address is a backend")
	interval := fs.Duration("interval", 500*time.Millisecond, "how often to resolve the backends and check each one's /readyz")
	failAfter := fs.Int("fail-after", 2, "failed checks in a row that take a backend out")
	logText := fs.Bool("log-text", false, "log as text instead of JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	var list []string
	for _, b := range strings.Split(*backends, ",") {
		if b = strings.TrimSpace(b); b != "" {
			list = append(list, b)
		}
	}
	if len(list) == 0 {
		return errors.New("no backends: pass --backends host:port")
	}
	var handler slog.Handler = slog.NewJSONHandler(logOut, nil)
	if *logText {
		handler = slog.NewTextHandler(logOut, nil)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", *listen, err)
	}
	l, err := New(Options{
		Listener:  ln,
		Backends:  list,
		Interval:  *interval,
		FailAfter: *failAfter,
		Logger:    slog.New(handler),
	})
	if err != nil {
		_ = ln.Close()
		return err
	}
	return l.Serve(ctx)
}
