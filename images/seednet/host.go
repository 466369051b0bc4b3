package main

import (
	"bytes"
	"context"

	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// host is the machine seednet configures. The real one runs ip and
// iptables; tests use a fake.
type host interface {
	// WriteConflist replaces the CNI config and reports whether it changed.
	WriteConflist(data []byte) (bool, error)
	// Routes lists the routes seednet added earlier (its own protocol).
	Routes(ctx context.Context) ([]route, error)
	ReplaceRoute(ctx context.Context, r route) error
	DeleteRoute(ctx context.Context, r route) error
	// ApplyIPTables loads seednet's chains and makes sure the jumps exist.
	ApplyIPTables(ctx context.Context, payload string, jumps [][]string) error
}

// routeProtocol marks the routes seednet owns (ip route ... proto 77), so it
// can find and remove stale ones without touching anyone else's.
const routeProtocol = 77

// commandError keeps the output of a command that failed, which is where
// ip and iptables say why.
type commandError struct {
	Args   []string
	Output string
	Err    error
}

func (e *commandError) Error() string {
	return fmt.Sprintf("%s: %v: %s", strings.Join(e.Args, " "), e.Err, strings.TrimSpace(e.Output))
}

func (e *commandError) Unwrap() error { return e.Err }

// execHost configures the machine it runs on (seednet runs in the host's
// network namespace).
type execHost struct {
	confPath string
}

var _ host = (*execHost)(nil)

func (h *execHost) run(ctx context.Context, stdin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	if err := cmd.Run(); err != nil {
		return "", &commandError{Args: args, Output: out.String(), Err: err}
	}
	return out.String(), nil
}

func (h *execHost) WriteConflist(data []byte) (bool, error) {
	if old, err := os.ReadFile(h.confPath); err == nil && bytes.Equal(old, data) {
		return false, nil
	}
	if err := os.MkdirAll(filepath.Dir(h.confPath), 0o755); err != nil {
		return false, fmt.Errorf("creating CNI config dir: %w", err)
	}
	// Write then rename: containerd must never read half a file.
	tmp := h.confPath + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return false, fmt.Errorf("writing CNI config: %w", err)
	}
	if err := os.Rename(tmp, h.confPath); err != nil {
		return false, fmt.Errorf("installing CNI config: %w", err)
	}
	return true, nil
}

func (h *execHost) Routes(ctx context.Context) ([]route, error) {
	out, err := h.run(ctx, "", "ip", "-4", "-o", "route", "show", "proto", strconv.Itoa(routeProtocol))
	if err != nil {
		return nil, err
	}
	return parseRoutes(out), nil
}

func (h *execHost) ReplaceRoute(ctx context.Context, r route) error {
	_, err := h.run(ctx, "", "ip", "-4", "route", "replace", r.Dst.String(), "via", r.Via.String(), "proto", strconv.Itoa(routeProtocol))
	return err
}

func (h *execHost) DeleteRoute(ctx context.Context, r route) error {
	_, err := h.run(ctx, "", "ip", "-4", "route", "del", r.Dst.String(), "proto", strconv.Itoa(routeProtocol))
	return err
}

func (h *execHost) ApplyIPTables(ctx context.Context, payload string, jumps [][]string) error {
	if _, err := h.run(ctx, payload, "iptables-restore", "--noflush", "--wait"); err != nil {
		return err
	}
	for _, j := range jumps {
		table, chain, rule := j[0], j[1], j[2:]
		check := append([]string{"iptables", "--wait", "-t", table, "-C", chain}, rule...)
		if _, err := h.run(ctx, "", check...); err == nil {
			continue
		}
		insert := append([]string{"iptables", "--wait", "-t", table, "-I", chain, "1"}, rule...)
		if _, err := h.run(ctx, "", insert...); err != nil {
			return err
		}
	}
	return nil
}

// parseRoutes reads `ip -o route show` output; lines it does not understand
// are skipped.
func parseRoutes(out string) []route {
	var routes []route
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || f[1] != "via" {
			continue
		}
		dst, err1 := netip.ParsePrefix(f[0])
		via, err2 := netip.ParseAddr(f[2])
		if err1 != nil || err2 != nil {
			continue
		}
		routes = append(routes, route{Dst: dst, Via: via})
	}
	return routes
}

// enableForwarding turns on IPv4 forwarding, without which the node does not
// route its pods' traffic. A fresh network namespace starts with it off.
func enableForwarding() error {
	const path = "/proc/sys/net/ipv4/ip_forward"
	if b, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(b)) == "1" {
		return nil
	}
	if err := os.WriteFile(path, []byte("1\n"), 0o644); err != nil {
		return fmt.Errorf("enabling IPv4 forwarding: %w", err)
	}
	return nil
}

// mtuOf returns the MTU of the interface that holds ip, or 1500.
func mtuOf(ip netip.Addr) int {
	const fallback = 1500
	ifaces, err := net.Interfaces()
	if err != nil {
		return fallback
	}
	for _, iface := range ifaces {
		addrs, err := iface.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				if addr, ok := netip.AddrFromSlice(n.IP); ok && addr.Unmap() == ip {
					return iface.MTU
				}
			}
		}
	}
	return fallback
}

// routeChanges returns the routes to add or replace (missing or with another
// gateway) and the routes to delete (seednet's, for CIDRs nobody has now).
func routeChanges(have, want []route) (replace, remove []route) {
	haveByDst := make(map[netip.Prefix]route, len(have))
	for _, r := range have {
		haveByDst[r.Dst] = r
	}
	wantDst := make(map[netip.Prefix]bool, len(want))
	for _, r := range want {
		wantDst[r.Dst] = true
		if h, ok := haveByDst[r.Dst]; !ok || h.Via != r.Via {
			replace = append(replace, r)
		}
	}
	for _, r := range have {
		if !wantDst[r.Dst] {
			remove = append(remove, r)
		}
	}
	return replace, remove
}
