package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/seedhq/seed/e2e/framework"
)

// serverLabel marks the probe server pods of TestPodNetwork with the machine
// they run on, so a Service can select one.
const serverLabel = "e2e.seed.dev/server"

// checkClusterAddressesStayOnMachine dials, from a pod and from a
// host-network pod on machine m, three cluster addresses that have no rule:
// a Service port that was just removed, the address of a deleted Service,
// and a pod address no node has. Each must fail at once, refused or
// unreachable (a timeout means a packet went out and nothing answered), and
// no packet for them may leave the machine; meanwhile the Service's
// remaining port must still connect, from both. The server pod labelled
// with m is the Services' endpoint.
func checkClusterAddressesStayOnMachine(ctx context.Context, t *testing.T, c *framework.Cluster, m, probe, tag string) {
	services, pods := clusterNetworks(ctx, t, c)
	unassigned := unassignedPodAddr(ctx, t, c, pods)
	nat := func() string { return framework.Docker(t, "exec", m, "iptables-save", "-t", "nat") }
	selector := map[string]string{serverLabel: m}

	// A Service with two ports, both programmed, then one removed.
	svc, err := c.Client.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "fence-" + tag},
		Spec: corev1.ServiceSpec{Selector: selector, Ports: []corev1.ServicePort{
			{Name: "kept", Port: 8080, TargetPort: intstr.FromInt32(8080)},
			{Name: "removed", Port: 8081, TargetPort: intstr.FromInt32(8080)},
		}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ip := svc.Spec.ClusterIP
	framework.Eventually(t, time.Minute, "kube-proxy on "+m+" to program both ports of "+svc.Name, func() (bool, string) {
		rules := nat()
		return hasServiceRule(rules, ip, 8080) && hasServiceRule(rules, ip, 8081), "rules for " + ip + " not all there"
	})
	svc.Spec.Ports = svc.Spec.Ports[:1]
	if _, err := c.Client.CoreV1().Services("default").Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, time.Minute, "kube-proxy on "+m+" to drop the rule for the removed port", func() (bool, string) {
		rules := nat()
		return hasServiceRule(rules, ip, 8080) && !hasServiceRule(rules, ip, 8081), "rule for " + ip + ":8081 still there"
	})

	// A Service that existed, and then did not.
	gone, err := c.Client.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "fence-gone-" + tag},
		Spec:       corev1.ServiceSpec{Selector: selector, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	goneIP := gone.Spec.ClusterIP
	framework.Eventually(t, time.Minute, "kube-proxy on "+m+" to program "+gone.Name, func() (bool, string) {
		return hasServiceRule(nat(), goneIP, 80), "no rule for " + goneIP + ":80"
	})
	if err := c.Client.CoreV1().Services("default").Delete(ctx, gone.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, time.Minute, "kube-proxy on "+m+" to forget "+goneIP, func() (bool, string) {
		return !strings.Contains(framework.Docker(t, "exec", m, "iptables-save"), " "+goneIP+"/32"), goneIP + " still in the rules"
	})

	noRule := []string{ip + ":8081", goneIP + ":80", unassigned.String() + ":8080"}
	// The dials below are meant to find no rule. Should the machine let one
	// out anyway, this host must drop it rather than pass it on.
	for _, a := range noRule {
		host, _, _ := strings.Cut(a, ":")
		out, err := exec.Command("ip", "-4", "route", "get", host).CombinedOutput()
		var exit *exec.ExitError
		switch {
		case err == nil:
			t.Fatalf("this host would forward a packet for %s (%s): route the clusters' ranges to nowhere first (hack/test.sh does)", host, strings.TrimSpace(string(out)))
		case !errors.As(err, &exit):
			t.Fatalf("checking this host's route for %s: %v", host, err)
		}
	}

	// Count, on the machine, every packet that is about to leave it for a
	// Service address or for the unassigned pod address. POSTROUTING sees
	// addresses after kube-proxy's DNAT, so a Service packet with a rule
	// has a pod's address by then and is not counted.
	counters := map[string]string{"services": services.String(), "pod": unassigned.String() + "/32"}
	for name, dst := range counters {
		rule := []string{"POSTROUTING", "-d", dst, "-m", "comment", "--comment", "e2e-" + tag + "-" + name, "-j", "RETURN"}
		framework.Docker(t, append([]string{"exec", m, "iptables", "-w", "-t", "mangle", "-I"}, rule...)...)
		defer framework.Docker(t, append([]string{"exec", m, "iptables", "-w", "-t", "mangle", "-D"}, rule...)...)
	}

	args := []string{"dial=" + ip + ":8080"}
	for _, a := range noRule {
		args = append(args, "dial="+a)
	}
	for _, hostNetwork := range []bool{false, true} {
		name := "fence-" + tag
		if hostNetwork {
			name += "-host"
		}
		dials := dialFrom(ctx, t, c, name, m, probe, hostNetwork, args)
		if d := dials[ip+":8080"]; d.outcome != "connected" {
			t.Errorf("%s: the Service's remaining port %s:8080 did not connect: %s", name, ip, d.line)
		}
		for _, a := range noRule {
			d := dials[a]
			if (d.outcome != "refused" && d.outcome != "unreachable") || d.elapsed >= time.Second {
				t.Errorf("%s: dialing %s, which has no rule, should fail at once (refused or unreachable); got %s", name, a, d.line)
			} else {
				t.Logf("%s: %s", name, d.line)
			}
		}
	}

	rules := framework.Docker(t, "exec", m, "iptables-save", "-c", "-t", "mangle")
	for name, dst := range counters {
		n, err := packetCount(rules, "e2e-"+tag+"-"+name)
		if err != nil {
			t.Fatalf("%v\n%s", err, rules)
		}
		if n != 0 {
			t.Errorf("%d packets for %s left %s; want none", n, dst, m)
		} else {
			t.Logf("no packet for %s left %s", dst, m)
		}
	}
}

// dial is one line of a probe's dial output.
type dial struct {
	outcome string
	elapsed time.Duration
	line    string
}

var dialLine = regexp.MustCompile(`^dial (\S+) (\S+) after (\d+)ms`)

// dialFrom runs a probe pod on machine m that dials each of args (dial=…)
// once, and returns how each dial ended, by address.
func dialFrom(ctx context.Context, t *testing.T, c *framework.Cluster, name, m, probe string, hostNetwork bool, args []string) map[string]dial {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			NodeName:      m,
			HostNetwork:   hostNetwork,
			RestartPolicy: corev1.RestartPolicyNever,
			Tolerations:   []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			Containers:    []corev1.Container{{Name: "probe", Image: probe, ImagePullPolicy: corev1.PullNever, Args: args}},
		},
	}
	if _, err := c.Client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dials := map[string]dial{}
	framework.Eventually(t, 2*time.Minute, name+" to finish its dials", func() (bool, string) {
		raw, err := c.Client.CoreV1().Pods("default").GetLogs(name, &corev1.PodLogOptions{}).DoRaw(ctx)
		if err != nil {
			return false, err.Error()
		}
		for _, line := range strings.Split(string(raw), "\n") {
			if f := dialLine.FindStringSubmatch(line); f != nil {
				ms, _ := strconv.Atoi(f[3])
				dials[f[1]] = dial{outcome: f[2], elapsed: time.Duration(ms) * time.Millisecond, line: line}
			}
		}
		return len(dials) == len(args), string(raw)
	})
	return dials
}

// clusterNetworks reads the cluster's Service and pod ranges (IPv4) from
// the configuration kubeadm set the cluster up with.
func clusterNetworks(ctx context.Context, t *testing.T, c *framework.Cluster) (services, pods netip.Prefix) {
	t.Helper()
	cm, err := c.Client.CoreV1().ConfigMaps("kube-system").Get(ctx, "kubeadm-config", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Networking struct {
			PodSubnet     string `json:"podSubnet"`
			ServiceSubnet string `json:"serviceSubnet"`
		} `json:"networking"`
	}
	if err := yaml.Unmarshal([]byte(cm.Data["ClusterConfiguration"]), &cfg); err != nil {
		t.Fatalf("reading kubeadm-config: %v", err)
	}
	first4 := func(list string) netip.Prefix {
		for _, s := range strings.Split(list, ",") {
			if p, err := netip.ParsePrefix(strings.TrimSpace(s)); err == nil && p.Addr().Is4() {
				return p.Masked()
			}
		}
		t.Fatalf("kubeadm-config has no IPv4 range in %q", list)
		return netip.Prefix{}
	}
	return first4(cfg.Networking.ServiceSubnet), first4(cfg.Networking.PodSubnet)
}

// unassignedPodAddr returns the last but one address of the pod range,
// after checking that no node's pod CIDR holds it.
func unassignedPodAddr(ctx context.Context, t *testing.T, c *framework.Cluster, pods netip.Prefix) netip.Addr {
	t.Helper()
	b := pods.Addr().As4()
	host := uint32(1)<<(32-pods.Bits()) - 2
	v := (uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])) + host
	addr := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	nodes, err := c.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes.Items {
		for _, cidr := range n.Spec.PodCIDRs {
			if p, err := netip.ParsePrefix(cidr); err == nil && p.Contains(addr) {
				t.Fatalf("node %s has %s, which holds %s: pick another address", n.Name, cidr, addr)
			}
		}
	}
	return addr
}

// hasServiceRule reports whether iptables-save output for the nat table
// sends ip:port (TCP) into a Service chain.
func hasServiceRule(rules, ip string, port int) bool {
	for _, line := range strings.Split(rules, "\n") {
		if strings.HasPrefix(line, "-A KUBE-SERVICES ") && strings.Contains(line, "-d "+ip+"/32 ") && strings.Contains(line, fmt.Sprintf("--dport %d ", port)) {
			return true
		}
	}
	return false
}

// packetCount reads the packet counter of the rule with the given comment
// from `iptables-save -c` output.
func packetCount(rules, comment string) (int, error) {
	for _, line := range strings.Split(rules, "\n") {
		if !strings.Contains(line, comment) {
			continue
		}
		var pkts, bytes int
		if _, err := fmt.Sscanf(line, "[%d:%d]", &pkts, &bytes); err != nil {
			return 0, fmt.Errorf("reading the counter of %q: %w", line, err)
		}
		return pkts, nil
	}
	return 0, fmt.Errorf("no rule with comment %s", comment)
}
