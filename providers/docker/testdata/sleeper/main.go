// Command sleeper stands in for a node image in the Docker provider's
// real-engine test: a static binary that stays up, and tells whoever
// connects to port 6443 what it sees of its machine.
package main

import (
	"encoding/json"
	"net"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// As PID 1 it must handle the stop signals itself. SIGRTMIN+3 is what
	// the provider sets for systemd; Docker counts SIGRTMIN as 34.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT, syscall.Signal(37))
	go func() { <-stop; os.Exit(0) }()

	l, err := net.Listen("tcp", ":6443")
	if err != nil {
		os.Exit(1)
	}
	for {
		conn, err := l.Accept()
		if err != nil {
			continue
		}
		_ = json.NewEncoder(conn).Encode(report())
		_ = conn.Close()
	}
}

func report() map[string]string {
	r := map[string]string{}
	r["hostname"], _ = os.Hostname()
	for key, path := range map[string]string{
		"providerID": "/var/lib/seed/provider-id",
		"script":     "/var/lib/seed/bootstrap/script",
		"file":       "/etc/seed/hello",
		"marker":     "/var/marker",
	} {
		b, _ := os.ReadFile(path)
		r[key] = string(b)
	}
	if fi, err := os.Stat("/var/lib/seed/bootstrap/script"); err == nil {
		r["scriptMode"] = fi.Mode().Perm().String()
	}
	if _, err := os.Stat("/var/run/docker.sock"); err == nil {
		r["dockerSocket"] = "yes"
	}
	return r
}
