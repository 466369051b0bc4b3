package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestExecHostKeepsClusterAddressesOnTheNode applies a plan with the real ip
// and iptables, in a network namespace of its own that stands for a node: a
// default route out of an uplink (whose gateway never answers), this node's
// pods behind pods0 with one pod in a namespace of its own, and one Service
// address with a DNAT rule, as kube-proxy would write it. A dial of a
// cluster address with no rule, from the pod or from the node itself, must
// fail at once and send nothing out of the uplink; the Service address with
// a rule must still connect from both.
func TestExecHostKeepsClusterAddressesOnTheNode(t *testing.T) {
	if list := os.Getenv("SEEDNET_TEST_DIAL"); list != "" {
		// The pod's half: dial and report, one line each.
		for _, addr := range strings.Split(list, ",") {
			d := dialOnce(addr)
			fmt.Printf("DIAL %s %s %d\n", addr, d.outcome, d.elapsed.Milliseconds())
		}
		return
	}
	if !inOwnNetns(t, "ip", "iptables", "iptables-save", "nsenter") {
		return
	}
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}

	// The node: an uplink with the default route, and a pod network.
	run("ip", "link", "set", "lo", "up")
	run("ip", "link", "add", "uplink0", "type", "veth", "peer", "name", "uplink1")
	run("ip", "addr", "add", "192.0.2.1/24", "dev", "uplink0")
	run("ip", "link", "set", "uplink0", "up")
	run("ip", "link", "set", "uplink1", "up")
	run("ip", "route", "add", "default", "via", "192.0.2.254")
	// The gateway "answers" ARP, so a leaked packet really goes out (and
	// times out) rather than failing on an unresolved neighbour.
	run("ip", "neigh", "replace", "192.0.2.254", "lladdr", "02:00:00:00:00:fe", "dev", "uplink0", "nud", "permanent")
	run("ip", "link", "add", "pods0", "type", "veth", "peer", "name", "pod")
	run("ip", "addr", "add", "10.244.1.1/24", "dev", "pods0")
	run("ip", "link", "set", "pods0", "up")
	if err := enableForwarding(); err != nil {
		t.Fatal(err)
	}

	// The pod: a namespace held open by sleep, its end of the veth inside.
	pod := exec.Command("unshare", "--net", "sleep", "600")
	if err := pod.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = pod.Process.Kill(); _ = pod.Wait() }()
	pid := strconv.Itoa(pod.Process.Pid)
	self, _ := os.Readlink("/proc/self/ns/net")
	deadline := time.Now().Add(5 * time.Second)
	for ns, _ := os.Readlink("/proc/" + pid + "/ns/net"); ns == self || ns == ""; ns, _ = os.Readlink("/proc/" + pid + "/ns/net") {
		if time.Now().After(deadline) {
			t.Fatal("the pod's namespace never appeared")
		}
		time.Sleep(10 * time.Millisecond)
	}
	run("ip", "link", "set", "pod", "netns", pid)
	inPod := func(args ...string) string { return run(append([]string{"nsenter", "-t", pid, "-n"}, args...)...) }
	inPod("ip", "link", "set", "lo", "up")
	inPod("ip", "addr", "add", "10.244.1.5/24", "dev", "pod")
	inPod("ip", "link", "set", "pod", "up")
	inPod("ip", "route", "add", "default", "via", "10.244.1.1")

	// A Service endpoint on the node, and kube-proxy's rule for one
	// Service address, for pods (PREROUTING) and the node (OUTPUT).
	ln, err := net.Listen("tcp", "10.244.1.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	endpoint := ln.Addr().String()
	for _, chain := range []string{"PREROUTING", "OUTPUT"} {
		run("iptables", "-w", "-t", "nat", "-A", chain, "-d", "10.96.0.10/32", "-p", "tcp", "--dport", "80", "-j", "DNAT", "--to-destination", endpoint)
	}
	// Everything that leaves by the uplink is counted.
	run("iptables", "-w", "-t", "mangle", "-A", "POSTROUTING", "-o", "uplink0", "-m", "comment", "--comment", "uplink", "-j", "RETURN")

	// seednet's part, twice: applying it again changes nothing.
	ctx := t.Context()
	h := &execHost{}
	p, err := computePlan("n1", []node{mustNode("n1", "192.0.2.1", "10.244.1.0/24")}, testNets, 1500, backendRoute)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		for _, r := range p.Routes {
			if err := h.ReplaceRoute(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		if err := h.ApplyIPTables(ctx, p.IPTables, jumpRules(p.LocalCIDR)); err != nil {
			t.Fatal(err)
		}
	}
	if routes, err := h.Routes(ctx); err != nil || !reflect.DeepEqual(routes, p.Routes) {
		t.Fatalf("routes = %v, %v; want %v", routes, err, p.Routes)
	}
	filter := run("iptables-save", "-t", "filter")
	for _, jump := range []string{"-A FORWARD -m comment --comment seednet -j SEEDNET-FORWARD", "-A OUTPUT -m comment --comment seednet -j SEEDNET-OUTPUT"} {
		if n := strings.Count(filter, jump); n != 1 {
			t.Errorf("%q appears %d times; want once:\n%s", jump, n, filter)
		}
	}

	want := map[string]string{
		"10.96.0.10:80": "connected",   // a Service port with a rule: DNAT still wins
		endpoint:        "connected",   // this node's pods: their route is more specific
		"10.96.0.11:80": "refused",     // a Service address with no rule
		"10.244.9.9:80": "unreachable", // a pod address no node has
	}
	var addrs []string
	for a := range want {
		addrs = append(addrs, a)
	}
	check := func(from string, got map[string]dial) {
		for a, w := range want {
			d := got[a]
			if d.outcome != w || (w != "connected" && d.elapsed >= time.Second) {
				t.Errorf("from %s, dialing %s: %s after %s; want %s at once", from, a, d.outcome, d.elapsed, w)
			}
		}
	}

	fromNode := map[string]dial{}
	for _, a := range addrs {
		fromNode[a] = dialOnce(a)
	}
	check("the node", fromNode)

	cmd := exec.Command("nsenter", "-t", pid, "-n", os.Args[0], "-test.run=^"+t.Name()+"$")
	cmd.Env = append(os.Environ(), "SEEDNET_TEST_DIAL="+strings.Join(addrs, ","))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("dialing from the pod: %v\n%s", err, out)
	}
	fromPod := map[string]dial{}
	for _, line := range strings.Split(string(out), "\n") {
		var addr, outcome string
		var ms int64
		if n, _ := fmt.Sscanf(line, "DIAL %s %s %d", &addr, &outcome, &ms); n == 3 {
			fromPod[addr] = dial{outcome: outcome, elapsed: time.Duration(ms) * time.Millisecond}
		}
	}
	check("the pod", fromPod)

	mangle := run("iptables-save", "-c", "-t", "mangle")
	for _, line := range strings.Split(mangle, "\n") {
		if strings.Contains(line, "--comment uplink") && !strings.HasPrefix(line, "[0:0]") {
			t.Errorf("packets left by the uplink: %s", line)
		}
	}
}

// TestExecHostUnreachableRoutesStayBehindOthers: an unreachable route never
// replaces another route to the same prefix, whoever made it, and removing
// one route of seednet's removes that one only.
func TestExecHostUnreachableRoutesStayBehindOthers(t *testing.T) {
	if !inOwnNetns(t, "ip") {
		return
	}
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"link", "add", "pods0", "type", "veth", "peer", "name", "pods1"},
		{"addr", "add", "10.244.1.1/24", "dev", "pods0"},
		{"link", "set", "pods0", "up"},
		{"link", "set", "pods1", "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	ctx := t.Context()
	h := &execHost{}
	get := func(addr string) string {
		out, _ := exec.Command("ip", "-4", "route", "get", addr).CombinedOutput()
		return string(out)
	}

	// The kernel's route to the pod bridge, same prefix.
	if err := h.ReplaceRoute(ctx, unreachable("10.244.1.0/24")); err != nil {
		t.Fatal(err)
	}
	if got := get("10.244.1.5"); !strings.Contains(got, "dev pods0") {
		t.Errorf("with an unreachable route beside it, the bridge's route lost: %s", got)
	}
	if err := h.DeleteRoute(ctx, unreachable("10.244.1.0/24")); err != nil {
		t.Fatal(err)
	}
	if got := get("10.244.1.5"); !strings.Contains(got, "dev pods0") {
		t.Errorf("removing the unreachable route took the bridge's: %s", got)
	}

	// seednet's own route via a node, same prefix as its unreachable one.
	via, nowhere := r("10.244.0.0/16", "10.244.1.9"), unreachable("10.244.0.0/16")
	for _, rt := range []route{nowhere, via} {
		if err := h.ReplaceRoute(ctx, rt); err != nil {
			t.Fatal(err)
		}
	}
	if routes, _ := h.Routes(ctx); !reflect.DeepEqual(sortedRoutes(routes), []route{via, nowhere}) {
		t.Fatalf("routes = %v, want %v and %v", routes, via, nowhere)
	}
	if got := get("10.244.7.7"); !strings.Contains(got, "via 10.244.1.9") {
		t.Errorf("the route via a node lost to the unreachable one: %s", got)
	}
	if err := h.DeleteRoute(ctx, via); err != nil {
		t.Fatal(err)
	}
	if routes, _ := h.Routes(ctx); !reflect.DeepEqual(routes, []route{nowhere}) {
		t.Fatalf("after removing %v: routes = %v, want %v", via, routes, nowhere)
	}
	if got := get("10.244.7.7"); !strings.Contains(got, "No route to host") {
		t.Errorf("a pod address no node has: %s; want no route to host", got)
	}
	if err := h.ReplaceRoute(ctx, via); err != nil {
		t.Fatal(err)
	}
	if err := h.DeleteRoute(ctx, nowhere); err != nil {
		t.Fatal(err)
	}
	if routes, _ := h.Routes(ctx); !reflect.DeepEqual(routes, []route{via}) {
		t.Fatalf("after removing %v: routes = %v, want %v", nowhere, routes, via)
	}
}

// dial is how one connection attempt ended.
type dial struct {
	outcome string
	elapsed time.Duration
}

// dialOnce makes one TCP connection attempt and names how it ended:
// connected, refused, unreachable, timeout or error.
func dialOnce(addr string) dial {
	start := time.Now()
	c, err := net.DialTimeout("tcp", addr, 3*time.Second)
	d := dial{elapsed: time.Since(start)}
	var ne net.Error
	switch {
	case err == nil:
		c.Close()
		d.outcome = "connected"
	case errors.Is(err, syscall.ECONNREFUSED):
		d.outcome = "refused"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		d.outcome = "unreachable"
	case errors.As(err, &ne) && ne.Timeout():
		d.outcome = "timeout"
	default:
		d.outcome = "error: " + err.Error()
	}
	return d
}
