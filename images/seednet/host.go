package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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

	// EnsureVXLAN creates seednet's VXLAN device, or repairs it, and
	// reports whether it changed anything.
	EnsureVXLAN(ctx context.Context, l vxlanLink) (bool, error)
	// DeleteVXLAN removes the device, and with it its routes, neighbours
	// and forwarding entries; no device is success.
	DeleteVXLAN(ctx context.Context) error
	// VXLANPeers lists the peers on the device: neighbour entries joined
	// with forwarding entries by MAC (either half may be missing).
	VXLANPeers(ctx context.Context) ([]vxlanPeer, error)
	ReplaceVXLANPeer(ctx context.Context, p vxlanPeer) error
	DeleteVXLANPeer(ctx context.Context, p vxlanPeer) error
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
	if r.Unreachable {
		_, err := h.run(ctx, "", "ip", "-4", "route", "replace", "unreachable", r.Dst.String(),
			"metric", strconv.FormatUint(unreachableMetric, 10), "proto", strconv.Itoa(routeProtocol))
		return err
	}
	args := []string{"ip", "-4", "route", "replace", r.Dst.String(), "via", r.Via.String()}
	if r.Dev != "" {
		// The VTEP is not on any subnet of the device: onlink says it is
		// reachable there anyway.
		args = append(args, "dev", r.Dev, "onlink")
	}
	_, err := h.run(ctx, "", append(args, "proto", strconv.Itoa(routeProtocol))...)
	return err
}

// DeleteRoute names the route's type or gateway, so that of two routes of
// seednet's to one prefix (one unreachable) it removes the one it means.
func (h *execHost) DeleteRoute(ctx context.Context, r route) error {
	args := []string{"ip", "-4", "route", "del", r.Dst.String(), "via", r.Via.String()}
	if r.Unreachable {
		args = []string{"ip", "-4", "route", "del", "unreachable", r.Dst.String(), "metric", strconv.FormatUint(unreachableMetric, 10)}
	}
	_, err := h.run(ctx, "", append(args, "proto", strconv.Itoa(routeProtocol))...)
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
// are skipped. Only the VXLAN device is kept as a route's Dev: routes of the
// route backend leave the device to the kernel.
func parseRoutes(out string) []route {
	var routes []route
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "unreachable" {
			if dst, err := netip.ParsePrefix(f[1]); err == nil {
				routes = append(routes, route{Dst: dst, Unreachable: true})
			}
			continue
		}
		if len(f) < 3 || f[1] != "via" {
			continue
		}
		dst, err1 := netip.ParsePrefix(f[0])
		via, err2 := netip.ParseAddr(f[2])
		if err1 != nil || err2 != nil {
			continue
		}
		r := route{Dst: dst, Via: via}
		for i := 3; i+1 < len(f); i++ {
			if f[i] == "dev" && f[i+1] == vxlanDevice {
				r.Dev = vxlanDevice
			}
		}
		routes = append(routes, r)
	}
	return routes
}

// linkInfo is what seednet reads of `ip -d -j link show`.
type linkInfo struct {
	MTU      int      `json:"mtu"`
	Address  string   `json:"address"`
	Flags    []string `json:"flags"`
	LinkInfo struct {
		Kind string `json:"info_kind"`
		Data struct {
			ID       int    `json:"id"`
			Local    string `json:"local"`
			Port     int    `json:"port"`
			Learning bool   `json:"learning"`
		} `json:"info_data"`
	} `json:"linkinfo"`
	AddrInfo []struct {
		Family    string `json:"family"`
		Local     string `json:"local"`
		PrefixLen int    `json:"prefixlen"`
	} `json:"addr_info"`
}

func isNoDevice(err error) bool {
	var ce *commandError
	return errors.As(err, &ce) && (strings.Contains(ce.Output, "does not exist") || strings.Contains(ce.Output, "Cannot find device"))
}

// showLink returns the device's state, or nil when there is no device.
func (h *execHost) showLink(ctx context.Context) (*linkInfo, error) {
	out, err := h.run(ctx, "", "ip", "-d", "-j", "addr", "show", "dev", vxlanDevice)
	if isNoDevice(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var links []linkInfo
	if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) != 1 {
		return nil, fmt.Errorf("reading %s: unexpected output of ip: %q", vxlanDevice, out)
	}
	return &links[0], nil
}

func (h *execHost) EnsureVXLAN(ctx context.Context, l vxlanLink) (bool, error) {
	cur, err := h.showLink(ctx)
	if err != nil {
		return false, err
	}
	changed := false
	d := cur
	if d != nil && (d.LinkInfo.Kind != "vxlan" || d.LinkInfo.Data.ID != vxlanVNI || d.LinkInfo.Data.Local != l.Local.String() ||
		d.LinkInfo.Data.Port != vxlanPort || d.LinkInfo.Data.Learning) {
		// What a device was created with cannot be changed: start again.
		if err := h.DeleteVXLAN(ctx); err != nil {
			return false, err
		}
		cur = nil
	}
	if cur == nil {
		if _, err := h.run(ctx, "", "ip", "link", "add", vxlanDevice, "type", "vxlan", "id", strconv.Itoa(vxlanVNI),
			"local", l.Local.String(), "dstport", strconv.Itoa(vxlanPort), "nolearning"); err != nil {
			return false, err
		}
		changed = true
	}
	if cur == nil || cur.Address != l.MAC || cur.MTU != l.MTU || !slices.Contains(cur.Flags, "UP") {
		if _, err := h.run(ctx, "", "ip", "link", "set", "dev", vxlanDevice, "address", l.MAC, "mtu", strconv.Itoa(l.MTU), "up"); err != nil {
			return changed, err
		}
		changed = true
	}
	want := l.VTEP.String()
	has := false
	if cur != nil {
		for _, a := range cur.AddrInfo {
			if a.Family != "inet" {
				continue
			}
			if a.Local == want && a.PrefixLen == 32 {
				has = true
				continue
			}
			if _, err := h.run(ctx, "", "ip", "addr", "del", a.Local+"/"+strconv.Itoa(a.PrefixLen), "dev", vxlanDevice); err != nil {
				return changed, err
			}
			changed = true
		}
	}
	if !has {
		if _, err := h.run(ctx, "", "ip", "addr", "replace", want+"/32", "dev", vxlanDevice); err != nil {
			return changed, err
		}
		changed = true
	}
	return changed, nil
}

func (h *execHost) DeleteVXLAN(ctx context.Context) error {
	_, err := h.run(ctx, "", "ip", "link", "del", vxlanDevice)
	if isNoDevice(err) {
		return nil
	}
	return err
}

func (h *execHost) VXLANPeers(ctx context.Context) ([]vxlanPeer, error) {
	out, err := h.run(ctx, "", "ip", "-4", "-j", "neigh", "show", "dev", vxlanDevice)
	if isNoDevice(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var neigh []struct {
		Dst    string `json:"dst"`
		LLAddr string `json:"lladdr"`
	}
	if err := json.Unmarshal([]byte(orEmpty(out)), &neigh); err != nil {
		return nil, fmt.Errorf("reading neighbours of %s: %w", vxlanDevice, err)
	}
	out, err = h.run(ctx, "", "bridge", "-j", "fdb", "show", "dev", vxlanDevice)
	if err != nil {
		return nil, err
	}
	var fdb []struct {
		MAC string `json:"mac"`
		Dst string `json:"dst"`
	}
	if err := json.Unmarshal([]byte(orEmpty(out)), &fdb); err != nil {
		return nil, fmt.Errorf("reading forwarding entries of %s: %w", vxlanDevice, err)
	}
	return joinPeers(neigh, fdb), nil
}

// joinPeers pairs neighbour entries (VTEP → MAC) with forwarding entries
// (MAC → node) by MAC. Entries without an address on the far side (the
// kernel's multicast entries, incomplete neighbours) are kept with what
// they have, so stale halves can be removed too.
func joinPeers(neigh []struct {
	Dst    string `json:"dst"`
	LLAddr string `json:"lladdr"`
}, fdb []struct {
	MAC string `json:"mac"`
	Dst string `json:"dst"`
}) []vxlanPeer {
	var peers []vxlanPeer
	byMAC := map[string]int{}
	for _, n := range neigh {
		ip, err := netip.ParseAddr(n.Dst)
		if err != nil {
			continue
		}
		byMAC[n.LLAddr] = len(peers)
		peers = append(peers, vxlanPeer{VTEP: ip, MAC: n.LLAddr})
	}
	for _, f := range fdb {
		under, err := netip.ParseAddr(f.Dst)
		if err != nil {
			continue // not one of ours: seednet's entries all have a dst
		}
		if i, ok := byMAC[f.MAC]; ok && f.MAC != "" {
			peers[i].Underlay = under
			continue
		}
		peers = append(peers, vxlanPeer{MAC: f.MAC, Underlay: under})
	}
	return peers
}

func orEmpty(out string) string {
	if strings.TrimSpace(out) == "" {
		return "[]"
	}
	return out
}

func (h *execHost) ReplaceVXLANPeer(ctx context.Context, p vxlanPeer) error {
	if _, err := h.run(ctx, "", "bridge", "fdb", "replace", p.MAC, "dev", vxlanDevice, "dst", p.Underlay.String(), "self", "permanent"); err != nil {
		return err
	}
	_, err := h.run(ctx, "", "ip", "neigh", "replace", p.VTEP.String(), "lladdr", p.MAC, "dev", vxlanDevice, "nud", "permanent")
	return err
}

func (h *execHost) DeleteVXLANPeer(ctx context.Context, p vxlanPeer) error {
	var errs []error
	if p.VTEP.IsValid() {
		if _, err := h.run(ctx, "", "ip", "neigh", "del", p.VTEP.String(), "dev", vxlanDevice); err != nil && !isNoEntry(err) {
			errs = append(errs, err)
		}
	}
	if p.Underlay.IsValid() && p.MAC != "" {
		if _, err := h.run(ctx, "", "bridge", "fdb", "del", p.MAC, "dev", vxlanDevice, "dst", p.Underlay.String(), "self"); err != nil && !isNoEntry(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func isNoEntry(err error) bool {
	var ce *commandError
	return errors.As(err, &ce) && (strings.Contains(ce.Output, "No such file") || strings.Contains(ce.Output, "not found") || isNoDevice(err))
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
// A route via a node and an unreachable route to the same prefix are two
// routes: neither replaces the other.
func routeChanges(have, want []route) (replace, remove []route) {
	haveByKey := make(map[routeKey]route, len(have))
	for _, r := range have {
		haveByKey[r.key()] = r
	}
	wanted := make(map[routeKey]bool, len(want))
	for _, r := range want {
		wanted[r.key()] = true
		if h, ok := haveByKey[r.key()]; !ok || h.Via != r.Via || h.Dev != r.Dev {
			replace = append(replace, r)
		}
	}
	for _, r := range have {
		if !wanted[r.key()] {
			remove = append(remove, r)
		}
	}
	return replace, remove
}
