package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"

	"github.com/seedhq/seed/manifests"
	"github.com/seedhq/seed/pkg/kube"
	"github.com/seedhq/seed/pkg/testenv"
)

// signallingHost tells the test each time a pass reaches its last step.
type signallingHost struct {
	*fakeHost
	applied chan struct{}
}

func (h signallingHost) ApplyIPTables(ctx context.Context, payload string, jumps [][]string) error {
	err := h.fakeHost.ApplyIPTables(ctx, payload, jumps)
	select {
	case h.applied <- struct{}{}:
	default:
	}
	return err
}

// TestWatchFencesTheClusterRangesWithSeednetsOwnPermissions runs seednet's
// watch loop against a real API server, as seednet's ServiceAccount bound
// by its own manifest: it finds kubeadm's ConfigMap (and only may read that
// one), and its first pass routes the pod range nowhere and rejects
// untranslated Service traffic.
func TestWatchFencesTheClusterRangesWithSeednetsOwnPermissions(t *testing.T) {
	env := testenv.Start(t.Context(), t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	doc, err := manifests.Network("seed.local/seednet:test", manifests.NetworkRoute)
	if err != nil {
		t.Fatal(err)
	}
	var rbac []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(doc), 4096)
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if len(u.Object) > 0 && u.GetKind() != "DaemonSet" {
			rbac = append(rbac, u)
		}
	}
	creator, err := kube.NewCreator(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := creator.CreateMissing(ctx, rbac); err != nil {
		t.Fatalf("installing seednet's RBAC: %v", err)
	}

	admin := env.Client
	n, err := admin.CoreV1().Nodes().Create(ctx, &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "n1"},
		Spec:       corev1.NodeSpec{PodCIDR: "10.244.3.0/24", PodCIDRs: []string{"10.244.3.0/24"}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "172.18.0.2"}}
	if _, err := admin.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.CoreV1().Nodes().Delete(context.Background(), "n1", metav1.DeleteOptions{}) })
	for _, name := range []string{kubeadmConfigName, "someone-elses"} {
		cm := kubeadmConfig("networking:\n  podSubnet: 10.244.0.0/16\n  serviceSubnet: 10.96.0.0/12\n")
		cm.Name = name
		if _, err := admin.CoreV1().ConfigMaps(kubeadmConfigNamespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	seednet, err := kubernetes.NewForConfig(env.ServiceAccountConfig("kube-system", "seednet"))
	if err != nil {
		t.Fatal(err)
	}
	h := signallingHost{fakeHost: &fakeHost{}, applied: make(chan struct{}, 1)}
	s := &syncer{self: "n1", backend: backendRoute, host: h, mtu: func(netip.Addr) int { return 1500 }}
	done := make(chan error, 1)
	watchCtx, stop := context.WithCancel(ctx)
	go func() { done <- watch(watchCtx, seednet, s, time.Hour, 100*time.Millisecond) }()
	select {
	case <-h.applied:
	case err := <-done:
		t.Fatalf("watch returned before its first pass: %v", err)
	case <-ctx.Done():
		t.Fatal("no pass reached the host within a minute (is seednet allowed to read what it watches?)")
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("watch: %v", err)
	}

	if !slices.Contains(h.routes, unreachable("10.244.0.0/16")) {
		t.Errorf("routes = %v, want the pod range routed nowhere", h.routes)
	}
	if !strings.Contains(h.payload, "-A SEEDNET-FORWARD -d 10.96.0.0/12 ") || !strings.Contains(h.payload, "-A SEEDNET-OUTPUT -d 10.96.0.0/12 ") {
		t.Errorf("iptables payload does not reject untranslated Service traffic:\n%s", h.payload)
	}
	if h.writes != 1 {
		t.Errorf("CNI config written %d times, want once", h.writes)
	}

	// What seednet may read is that one ConfigMap.
	if _, err := seednet.CoreV1().ConfigMaps(kubeadmConfigNamespace).Get(ctx, "someone-elses", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("seednet reading another ConfigMap in %s: err = %v, want Forbidden", kubeadmConfigNamespace, err)
	}
	if _, err := seednet.CoreV1().ConfigMaps(kubeadmConfigNamespace).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("seednet listing every ConfigMap in %s: err = %v, want Forbidden", kubeadmConfigNamespace, err)
	}
}
