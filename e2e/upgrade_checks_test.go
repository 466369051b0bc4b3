package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/seedhq/seed/e2e/framework"
	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/providers"
)

// requireNodeImages checks that the node images of the given versions are
// in the engine, under the default names (seed-node:<version>) the
// provider picks per version. Outside CI a missing one skips the test,
// saying how to build it; under CI it fails, as hack/test.sh must build
// them.
func requireNodeImages(t testing.TB, versions ...string) {
	t.Helper()
	waitForBackgroundImage(t)
	var missing []string
	for _, v := range versions {
		if exec.Command("docker", "image", "inspect", "seed-node:"+v).Run() != nil {
			missing = append(missing, v)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := fmt.Sprintf("no node image for %v: build it with `hack/build-images.sh VERSION` (cached; hack/test.sh e2e does it)", missing)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// waitForBackgroundImage waits, when hack/test.sh builds the previous
// minor's node image in the background (SEED_UPGRADE_FROM_STATUS names the
// file it writes when done), until that build has ended, and fails the
// test if it failed.
func waitForBackgroundImage(t testing.TB) {
	t.Helper()
	status := os.Getenv("SEED_UPGRADE_FROM_STATUS")
	if status == "" {
		return
	}
	start := time.Now()
	logged := false
	for {
		b, err := os.ReadFile(status)
		if err == nil {
			if s := strings.TrimSpace(string(b)); !strings.HasPrefix(s, "ok ") {
				t.Fatalf("the background build of the previous minor's node image %s", s)
			}
			if logged {
				t.Logf("Background build of %s done after waiting %s", os.Getenv("SEED_UPGRADE_FROM_IMAGE"), time.Since(start).Round(time.Second))
			}
			return
		}
		if time.Since(start) > 40*time.Minute {
			t.Fatalf("the background build of %s has not ended after 40 minutes (status file %s)", os.Getenv("SEED_UPGRADE_FROM_IMAGE"), status)
		}
		if !logged {
			t.Logf("Waiting for the background build of %s (hack/test.sh)", os.Getenv("SEED_UPGRADE_FROM_IMAGE"))
			logged = true
		}
		time.Sleep(5 * time.Second)
	}
}

// etcdMember is one member as etcd's member list has it.
type etcdMember struct {
	ID        string   `json:"ID"`
	Name      string   `json:"name"`
	PeerURLs  []string `json:"peerURLs"`
	IsLearner bool     `json:"isLearner"`
}

// etcdMembers lists etcd's members through its gRPC gateway (POST
// /v3/cluster/member/list) on the control-plane machine's address, with
// the apiserver's etcd client certificate read from that machine: nothing
// is needed from the etcd image, which may hold no etcdctl.
func etcdMembers(ctx context.Context, node, ip string) ([]etcdMember, error) {
	read := func(path string) ([]byte, error) {
		out, err := exec.CommandContext(ctx, "docker", "exec", node, "cat", path).Output()
		if err != nil {
			return nil, fmt.Errorf("reading %s on %s: %w", path, node, err)
		}
		return out, nil
	}
	ca, err := read("/etc/kubernetes/pki/etcd/ca.crt")
	if err != nil {
		return nil, err
	}
	crt, err := read("/etc/kubernetes/pki/apiserver-etcd-client.crt")
	if err != nil {
		return nil, err
	}
	key, err := read("/etc/kubernetes/pki/apiserver-etcd-client.key")
	if err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(crt, key)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+net.JoinHostPort(ip, "2379")+"/v3/cluster/member/list", strings.NewReader("{}"))
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("etcd member list: %w", err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("etcd member list: %s: %s", resp.Status, body.String())
	}
	var out struct {
		Members []etcdMember `json:"members"`
	}
	if err := json.Unmarshal(body.Bytes(), &out); err != nil {
		return nil, fmt.Errorf("etcd member list: %w: %s", err, body.String())
	}
	return out.Members, nil
}

// clusterAt reports what, if anything, keeps the cluster from being fully
// at version: every machine (1 control plane, workers) and Node at it,
// Nodes and machines one for one, the ledger empty, kube-proxy rolled out
// at it.
func clusterAt(ctx context.Context, t testing.TB, d *disruption, version string, workers int) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if l, synced := d.ledger.snapshot(); !synced || len(l) > 0 {
		return fmt.Sprintf("ledger %v", l)
	}
	ms := machines(t, d.name)
	cps, ws := machinesWithRole(ms, providers.RoleControlPlane), machinesWithRole(ms, providers.RoleWorker)
	if len(cps) != 1 || len(ws) != workers || len(ms) != workers+1 {
		return fmt.Sprintf("machines %v", ms)
	}
	for _, m := range ms {
		if m.Version != version {
			return fmt.Sprintf("machine %s at %q", m.Name, m.Version)
		}
	}
	nodes, err := d.c.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err.Error()
	}
	var names []string
	for i := range nodes.Items {
		n := &nodes.Items[i]
		names = append(names, n.Name)
		if !framework.NodeReady(n) || n.Status.NodeInfo.KubeletVersion != version || n.Spec.Unschedulable {
			return fmt.Sprintf("node %s: Ready %t, kubelet %s, unschedulable %t", n.Name, framework.NodeReady(n), n.Status.NodeInfo.KubeletVersion, n.Spec.Unschedulable)
		}
	}
	slices.Sort(names)
	var want []string
	for _, m := range ms {
		want = append(want, m.Name)
	}
	if !slices.Equal(names, want) {
		return fmt.Sprintf("nodes %v, machines %v", names, want)
	}
	ds, err := d.c.Client.AppsV1().DaemonSets("kube-system").Get(ctx, "kube-proxy", metav1.GetOptions{})
	if err != nil {
		return err.Error()
	}
	img := ds.Spec.Template.Spec.Containers[0].Image
	st := ds.Status
	if !strings.HasSuffix(img, ":"+version) || st.ObservedGeneration != ds.Generation || st.UpdatedNumberScheduled != st.DesiredNumberScheduled ||
		st.NumberAvailable != st.DesiredNumberScheduled || st.DesiredNumberScheduled != int32(len(ms)) {
		return fmt.Sprintf("kube-proxy %s: %d/%d updated, %d available", img, st.UpdatedNumberScheduled, st.DesiredNumberScheduled, st.NumberAvailable)
	}
	return ""
}

// checkControlPlaneAt asserts the control plane runs version on the one
// machine cp, in every part: the static pods, the ClusterConfiguration
// kubeadm keeps (what a later join reads), and etcd, which must have
// exactly one voting member, cp's.
func checkControlPlaneAt(ctx context.Context, t testing.TB, c *framework.Cluster, cp machine, version string) {
	t.Helper()
	for _, component := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler"} {
		pod, err := c.Client.CoreV1().Pods("kube-system").Get(ctx, component+"-"+cp.Name, metav1.GetOptions{})
		if err != nil {
			t.Errorf("%s on %s: %v", component, cp.Name, err)
			continue
		}
		if img := pod.Spec.Containers[0].Image; !strings.HasSuffix(img, ":"+version) || !podReady(pod) {
			t.Errorf("%s: image %s, Ready %t; want %s, Ready", pod.Name, img, podReady(pod), version)
		}
	}
	cm, err := c.Client.CoreV1().ConfigMaps("kube-system").Get(ctx, "kubeadm-config", metav1.GetOptions{})
	if err != nil {
		t.Errorf("kubeadm-config: %v", err)
	} else if !strings.Contains(cm.Data["ClusterConfiguration"], "kubernetesVersion: "+version) {
		t.Errorf("kubeadm-config's ClusterConfiguration is not at %s (a later control-plane join would deploy that):\n%s", version, cm.Data["ClusterConfiguration"])
	}
	node, err := c.Client.CoreV1().Nodes().Get(ctx, cp.Name, metav1.GetOptions{})
	if err != nil {
		t.Errorf("node %s: %v", cp.Name, err)
		return
	}
	members, err := etcdMembers(ctx, cp.Name, nodeIP(node))
	if err != nil {
		t.Errorf("%v", err)
		return
	}
	if len(members) != 1 || members[0].Name != cp.Name || members[0].IsLearner {
		t.Errorf("etcd members %+v: want exactly one voting member, %s", members, cp.Name)
	}
}

// checkKubeconfigUnchanged asserts the kubeconfig `seed up` wrote is the
// same file and still reaches the cluster, now at version.
func checkKubeconfigUnchanged(ctx context.Context, t testing.TB, c *framework.Cluster, before []byte, version string) {
	t.Helper()
	now, err := os.ReadFile(c.Kubeconfig)
	if err != nil || !bytes.Equal(now, before) {
		t.Errorf("the kubeconfig changed (err %v)", err)
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(before)
	if err != nil {
		t.Fatal(err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	v, err := client.Discovery().ServerVersion()
	if err != nil {
		t.Errorf("the original kubeconfig no longer reaches the cluster: %v", err)
	} else if v.GitVersion != version {
		t.Errorf("through the original kubeconfig the API server is %s, want %s", v.GitVersion, version)
	}
	if _, err := client.CoreV1().ConfigMaps(v1alpha1.DefaultNamespace).Get(ctx, v1alpha1.SpecConfigMap, metav1.GetOptions{}); err != nil {
		t.Errorf("reading the spec through the original kubeconfig: %v", err)
	}
}
