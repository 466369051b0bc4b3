package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// syncer applies plans to a host, remembering what it last did so that it
// logs changes, not every pass.
type syncer struct {
	self    string
	backend string
	host    host
	// noVXLAN: with the route backend, the VXLAN device is known to be
	// gone, so passes stop asking the kernel to delete it.
	noVXLAN bool
	// mtu reports the MTU pods get: that of the interface holding the
	// node's InternalIP.
	mtu func(netip.Addr) int
	// rejected is the Service ranges the host last rejected untranslated
	// traffic to, to log a change once.
	rejected []netip.Prefix
}

// sync makes the host match the plan for the given nodes and cluster
// ranges. It is idempotent: a pass with nothing to change changes nothing.
func (s *syncer) sync(ctx context.Context, nodes []node, nets clusterNetworks) error {
	var me node
	for _, n := range nodes {
		if n.Name == s.self {
			me = n
		}
	}
	p, err := computePlan(s.self, nodes, nets, s.mtu(me.InternalIP), s.backend)
	if err != nil {
		return err
	}

	var errs []error
	// The device first: the routes go through it.
	if p.VXLAN != nil {
		changed, err := s.host.EnsureVXLAN(ctx, *p.VXLAN)
		if err != nil {
			return fmt.Errorf("setting up %s: %w", vxlanDevice, err)
		}
		if changed {
			klog.InfoS("Set up the VXLAN device", "device", vxlanDevice, "local", p.VXLAN.Local, "vtep", p.VXLAN.VTEP, "mac", p.VXLAN.MAC, "mtu", p.VXLAN.MTU)
		}
		s.noVXLAN = false
	} else if !s.noVXLAN {
		// Left over from the vxlan backend; routes replace its routes.
		if err := s.host.DeleteVXLAN(ctx); err != nil {
			errs = append(errs, fmt.Errorf("removing %s: %w", vxlanDevice, err))
		} else {
			s.noVXLAN = true
		}
	}

	changed, err := s.host.WriteConflist(p.Conflist)
	if err != nil {
		errs = append(errs, err)
	} else if changed {
		klog.InfoS("Wrote CNI config: pods of this node get addresses from its pod CIDR", "node", klog.KRef("", s.self), "podCIDR", p.LocalCIDR)
	}

	if p.VXLAN != nil {
		have, err := s.host.VXLANPeers(ctx)
		if err != nil {
			return errors.Join(append(errs, fmt.Errorf("listing VXLAN peers: %w", err))...)
		}
		replace, remove := peerChanges(have, p.Peers)
		// Stale entries go first: a node that changed address keeps its
		// VTEP, and removing the old neighbour after adding the new one
		// would remove the new one.
		for _, peer := range remove {
			klog.InfoS("Removing VXLAN peer: no node has it any more", "peer", peer)
			if err := s.host.DeleteVXLANPeer(ctx, peer); err != nil {
				errs = append(errs, fmt.Errorf("removing VXLAN peer %s: %w", peer, err))
			}
		}
		for _, peer := range replace {
			klog.InfoS("Adding VXLAN peer", "peer", peer)
			if err := s.host.ReplaceVXLANPeer(ctx, peer); err != nil {
				errs = append(errs, fmt.Errorf("adding VXLAN peer %s: %w", peer, err))
			}
		}
	}

	have, err := s.host.Routes(ctx)
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("listing routes: %w", err))...)
	}
	replace, remove := routeChanges(have, p.Routes)
	for _, r := range replace {
		if r.Unreachable {
			klog.InfoS("Routing the cluster's pod range nowhere: a pod address no node has fails here instead of leaving by the default route", "cidr", r.Dst)
		} else {
			klog.InfoS("Routing another node's pods via that node", "cidr", r.Dst, "via", r.Via, "device", r.Dev)
		}
		if err := s.host.ReplaceRoute(ctx, r); err != nil {
			errs = append(errs, fmt.Errorf("adding route %s: %w", r, err))
		}
	}
	for _, r := range remove {
		if r.Unreachable {
			klog.InfoS("Removing unreachable route: no longer the cluster's pod range", "cidr", r.Dst)
		} else {
			klog.InfoS("Removing route: no node has this pod CIDR any more", "cidr", r.Dst, "via", r.Via)
		}
		if err := s.host.DeleteRoute(ctx, r); err != nil {
			errs = append(errs, fmt.Errorf("removing route %s: %w", r, err))
		}
	}

	if err := s.host.ApplyIPTables(ctx, p.IPTables, jumpRules(p.LocalCIDR)); err != nil {
		errs = append(errs, fmt.Errorf("applying iptables rules: %w", err))
	} else if !slices.Equal(s.rejected, nets.Services) {
		klog.InfoS("Rejecting traffic to Service addresses kube-proxy has no rule for, from pods and from the node", "serviceCIDRs", nets.Services)
		s.rejected = slices.Clone(nets.Services)
	}
	return errors.Join(errs...)
}

// peerChanges returns the peers to add or replace and the entries to
// remove: any that is not exactly a wanted peer.
func peerChanges(have, want []vxlanPeer) (replace, remove []vxlanPeer) {
	wanted := make(map[vxlanPeer]bool, len(want))
	for _, p := range want {
		wanted[p] = true
	}
	present := make(map[vxlanPeer]bool, len(have))
	for _, p := range have {
		present[p] = true
		if !wanted[p] {
			remove = append(remove, p)
		}
	}
	for _, p := range want {
		if !present[p] {
			replace = append(replace, p)
		}
	}
	return replace, remove
}

// watch runs sync whenever a Node's pod CIDRs or address change or kubeadm's
// configuration does, and every resync period anyway, to repair what someone
// else removed. It returns when ctx ends.
func watch(ctx context.Context, client kubernetes.Interface, s *syncer, resync, retry time.Duration) error {
	factory := informers.NewSharedInformerFactory(client, 0)
	nodes := factory.Core().V1().Nodes()
	// Only the one ConfigMap, which is all seednet may read.
	kubeadm := informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithNamespace(kubeadmConfigNamespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", kubeadmConfigName).String()
		}))
	configMaps := kubeadm.Core().V1().ConfigMaps()
	trigger := make(chan struct{}, 1)
	poke := func() {
		select {
		case trigger <- struct{}{}:
		default:
		}
	}
	if _, err := configMaps.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { poke() },
		UpdateFunc: func(any, any) { poke() },
		DeleteFunc: func(any) { poke() },
	}); err != nil {
		return fmt.Errorf("watching %s/%s: %w", kubeadmConfigNamespace, kubeadmConfigName, err)
	}
	if _, err := nodes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { poke() },
		UpdateFunc: func(oldObj, newObj any) {
			o, ok1 := oldObj.(*corev1.Node)
			n, ok2 := newObj.(*corev1.Node)
			// Status heartbeats are most updates; only routing facts matter.
			if !ok1 || !ok2 || !sameRouting(nodeFromAPI(o), nodeFromAPI(n)) {
				poke()
			}
		},
		DeleteFunc: func(any) { poke() },
	}); err != nil {
		return fmt.Errorf("watching nodes: %w", err)
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	kubeadm.Start(ctx.Done())
	defer kubeadm.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), nodes.Informer().HasSynced, configMaps.Informer().HasSynced) {
		return ctx.Err()
	}

	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-trigger:
		case <-timer.C:
		}
		list, err := nodes.Lister().List(labels.Everything())
		next := resync
		var nets clusterNetworks
		if err == nil {
			nets, err = clusterNetworksFrom(configMaps.Lister().ConfigMaps(kubeadmConfigNamespace).Get(kubeadmConfigName))
		}
		if err == nil {
			all := make([]node, 0, len(list))
			for _, n := range list {
				all = append(all, nodeFromAPI(n))
			}
			err = s.sync(ctx, all, nets)
		}
		var noCIDR errNoPodCIDR
		switch {
		case errors.As(err, &noCIDR):
			klog.InfoS("Waiting for the controller manager to assign this node a pod CIDR", "node", klog.KRef("", s.self))
			next = retry
		case err != nil:
			klog.ErrorS(err, "Sync failed; retrying", "after", retry)
			next = retry
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(next)
	}
}

// clusterNetworksFrom reads the cluster's ranges from what the lister
// returned for kubeadm's ConfigMap.
func clusterNetworksFrom(cm *corev1.ConfigMap, err error) (clusterNetworks, error) {
	if apierrors.IsNotFound(err) {
		cm, err = nil, nil
	}
	if err != nil {
		return clusterNetworks{}, fmt.Errorf("reading %s/%s: %w", kubeadmConfigNamespace, kubeadmConfigName, err)
	}
	return clusterNetworksFromKubeadm(cm)
}

// sameRouting reports whether two views of a node route the same way.
func sameRouting(a, b node) bool {
	if a.InternalIP != b.InternalIP || len(a.PodCIDRs) != len(b.PodCIDRs) {
		return false
	}
	for i := range a.PodCIDRs {
		if a.PodCIDRs[i] != b.PodCIDRs[i] {
			return false
		}
	}
	return true
}
