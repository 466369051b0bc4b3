package main

import (
	"net/netip"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"
)

// inOwnNetns reports whether the test runs in a network namespace of its
// own. When it does not, it runs the test binary again, for this test alone,
// under `unshare --net`, reports that run's outcome, and returns false. The
// tools listed must be installed; without them, or without root, the test
// skips, or fails under CI.
func inOwnNetns(t *testing.T, tools ...string) bool {
	t.Helper()
	if os.Getenv("SEEDNET_TEST_NETNS") != "" {
		return true
	}
	missing := os.Geteuid() != 0
	for _, tool := range append([]string{"unshare"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			missing = true
		}
	}
	if missing {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI=true and this test needs root, unshare and %s", strings.Join(tools, ", "))
		}
		t.Skipf("needs root, unshare and %s", strings.Join(tools, ", "))
	}
	cmd := exec.Command("unshare", "--net", os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v")
	cmd.Env = append(os.Environ(), "SEEDNET_TEST_NETNS=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("in a new network namespace: %v\n%s", err, out)
	}
	t.Logf("%s", out)
	return false
}

// TestExecHostVXLAN drives the real ip and bridge commands against the
// kernel, in a network namespace of its own.
func TestExecHostVXLAN(t *testing.T) {
	if !inOwnNetns(t, "ip", "bridge") {
		return
	}

	ctx := t.Context()
	h := &execHost{}
	for _, args := range [][]string{{"link", "set", "lo", "up"}, {"addr", "add", "10.0.0.1/32", "dev", "lo"}} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	link := vxlanLink{Local: netip.MustParseAddr("10.0.0.1"), VTEP: netip.MustParseAddr("10.244.1.0"), MAC: vxlanMAC(netip.MustParseAddr("10.0.0.1")), MTU: 1450}

	peers, err := h.VXLANPeers(ctx)
	if err != nil || peers != nil {
		t.Fatalf("peers before the device exists = %v, %v; want none, no error", peers, err)
	}
	if err := h.DeleteVXLAN(ctx); err != nil {
		t.Fatalf("deleting a device that does not exist: %v", err)
	}
	for i, want := range []bool{true, false} {
		changed, err := h.EnsureVXLAN(ctx, link)
		if err != nil || changed != want {
			t.Fatalf("EnsureVXLAN pass %d = %v, %v; want %v", i, changed, err, want)
		}
	}
	link.MTU = 1400
	if changed, err := h.EnsureVXLAN(ctx, link); err != nil || !changed {
		t.Fatalf("EnsureVXLAN with a new MTU = %v, %v; want a change", changed, err)
	}
	cur, err := h.showLink(ctx)
	if err != nil || cur.MTU != 1400 || cur.Address != link.MAC || cur.LinkInfo.Data.Port != vxlanPort {
		t.Fatalf("device = %+v, %v", cur, err)
	}
	// A device made with other parameters is made again.
	link.Local = netip.MustParseAddr("10.0.0.2")
	if changed, err := h.EnsureVXLAN(ctx, link); err != nil || !changed {
		t.Fatalf("EnsureVXLAN with a new local address = %v, %v; want a change", changed, err)
	}
	if cur, _ := h.showLink(ctx); cur.LinkInfo.Data.Local != "10.0.0.2" {
		t.Fatalf("local address = %s, want 10.0.0.2", cur.LinkInfo.Data.Local)
	}

	peer := vxlanPeer{VTEP: netip.MustParseAddr("10.244.2.0"), MAC: "0e:5e:0a:00:00:05", Underlay: netip.MustParseAddr("10.0.0.5")}
	for i := 0; i < 2; i++ {
		if err := h.ReplaceVXLANPeer(ctx, peer); err != nil {
			t.Fatalf("ReplaceVXLANPeer: %v", err)
		}
	}
	if peers, err := h.VXLANPeers(ctx); err != nil || !reflect.DeepEqual(peers, []vxlanPeer{peer}) {
		t.Fatalf("peers = %v, %v; want %v", peers, err, peer)
	}
	rt := route{Dst: netip.MustParsePrefix("10.244.2.0/24"), Via: peer.VTEP, Dev: vxlanDevice}
	if err := h.ReplaceRoute(ctx, rt); err != nil {
		t.Fatalf("ReplaceRoute: %v", err)
	}
	if routes, err := h.Routes(ctx); err != nil || !reflect.DeepEqual(routes, []route{rt}) {
		t.Fatalf("routes = %v, %v; want %v", routes, err, rt)
	}
	// Removed by its gateway, as DeleteRoute names it, then back.
	if err := h.DeleteRoute(ctx, rt); err != nil {
		t.Fatalf("DeleteRoute: %v", err)
	}
	if routes, err := h.Routes(ctx); err != nil || len(routes) != 0 {
		t.Fatalf("routes after DeleteRoute = %v, %v", routes, err)
	}
	if err := h.ReplaceRoute(ctx, rt); err != nil {
		t.Fatalf("ReplaceRoute again: %v", err)
	}
	if err := h.DeleteVXLANPeer(ctx, peer); err != nil {
		t.Fatalf("DeleteVXLANPeer: %v", err)
	}
	if err := h.DeleteVXLANPeer(ctx, peer); err != nil {
		t.Fatalf("DeleteVXLANPeer again: %v", err)
	}
	if peers, err := h.VXLANPeers(ctx); err != nil || len(peers) != 0 {
		t.Fatalf("peers after deleting = %v, %v", peers, err)
	}
	if err := h.DeleteVXLAN(ctx); err != nil {
		t.Fatalf("DeleteVXLAN: %v", err)
	}
	if routes, err := h.Routes(ctx); err != nil || len(routes) != 0 {
		t.Fatalf("routes after the device went = %v, %v", routes, err)
	}
}

func TestServerOf(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := dir + "/" + name
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	kubelet := write("kubelet.conf", `apiVersion: v1
kind: Config
clusters:
- name: default-cluster
  cluster: {server: "https://c1-control-plane:6443", certificate-authority: /etc/kubernetes/pki/ca.crt}
contexts:
- name: default-context
  context: {cluster: default-cluster, user: default-auth}
current-context: default-context
users:
- name: default-auth
  user: {client-certificate: /var/lib/kubelet/pki/kubelet-client-current.pem}
`)
	if got, err := serverOf(kubelet); err != nil || got != "https://c1-control-plane:6443" {
		t.Errorf("serverOf = %q, %v", got, err)
	}
	noContext := write("bad.conf", "apiVersion: v1\nkind: Config\n")
	if _, err := serverOf(noContext); err == nil {
		t.Error("a kubeconfig without a current context gave no error")
	}
	if _, err := serverOf(dir + "/missing"); err == nil {
		t.Error("a missing file gave no error")
	}
}
