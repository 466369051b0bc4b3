package controller

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/seedhq/seed/agent/etcd"
	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/pkg/autoscale"
	"github.com/seedhq/seed/pkg/bootstrap"
	"github.com/seedhq/seed/pkg/plan"
	"github.com/seedhq/seed/providers"
)

// EtcdMembers is the etcd membership the control-plane replacement reads
// and changes (agent/etcd's Client; tests fake it).
type EtcdMembers interface {
	Members(ctx context.Context, endpoints []string) ([]etcd.Member, error)
	RemoveMember(ctx context.Context, endpoints []string, id uint64) error
	Status(ctx context.Context, endpoint string) (etcd.Status, error)
	MoveLeader(ctx context.Context, leaderEndpoint string, to uint64) error
}

// noEtcd is the etcd of an agent that has no client certificate: every
// call says why.
type noEtcd struct{ err error }

func (n noEtcd) Members(context.Context, []string) ([]etcd.Member, error) { return nil, n.err }
func (n noEtcd) RemoveMember(context.Context, []string, uint64) error     { return n.err }
func (n noEtcd) Status(context.Context, string) (etcd.Status, error)      { return etcd.Status{}, n.err }
func (n noEtcd) MoveLeader(context.Context, string, uint64) error         { return n.err }

// agentSelector selects the agent's own pods: a drain of the control plane
// being replaced leaves them for the handover.
var agentSelector = labels.SelectorFromSet(labels.Set{"app.kubernetes.io/name": "seed-agent"})

// controlPlaneLabel marks control-plane Nodes (kubeadm sets it).
const controlPlaneLabel = "node-role.kubernetes.io/control-plane"

// minEtcd35 is the oldest etcd 3.5 a 3.6 member may join (etcd-io/etcd
// #19557, #20793, and the zombie-member fixes of 3.5.26).
const minEtcd35 = "3.5.26"

// advanceReplacements moves the recorded control-plane replacement one step
// (see plan.ReplaceSteps). Each step is safe to repeat: an agent killed in
// the middle of one takes it again.
func (r *Reconciler) advanceReplacements(ctx context.Context, ps *pass) {
	for _, name := range sortedKeys(ps.led.Entries) {
		e := ps.led.Entries[name]
		if e.Op != plan.OpReplaceControlPlane {
			continue
		}
		before := e.NextStep()
		waiting, err := r.replaceStep(ctx, ps, name, e)
		if e.NextStep() != before {
			now := ps.now
			e.StepStartedAt, e.Waiting, e.LastError, ps.moved = &now, "", "", true
			r.opts.Logger.Info("Control-plane replacement moved on", "machine", name, "replaces", e.Replaces, "done", before, "next", e.NextStep())
			r.event(ps.specCM, corev1.EventTypeNormal, "ControlPlaneReplacement",
				"Replacing control-plane machine %s by %s: %s done, next %s", e.Replaces, name, before, e.NextStep())
		} else {
			e.Waiting = waiting
		}
		if err != nil {
			e.LastError, r.failures[name] = err.Error(), err.Error()
			ps.errs = append(ps.errs, fmt.Errorf("replacing control-plane machine %s (step %s): %w", e.Replaces, before, err))
		}
		if _, ok := ps.led.Entries[name]; !ok && before == plan.StepRollBack {
			delete(r.failures, name)
			r.event(ps.specCM, corev1.EventTypeWarning, "ControlPlaneReplacementRolledBack",
				"Control-plane machine %s was removed; %s carries on, and the replacement is tried again", name, e.Replaces)
		} else if !ok {
			delete(r.failures, name)
			r.opts.Logger.Info("Control-plane machine replaced", "old", e.Replaces, "new", name, "version", e.KubernetesVersion)
			r.event(ps.specCM, corev1.EventTypeNormal, "ControlPlaneReplaced", "Control-plane machine %s replaced by %s (Kubernetes %s)",
				e.Replaces, name, e.KubernetesVersion)
		}
	}
}

// replaceStep takes the step e records. It returns why the step waits, if
// it does; advancing e.Step is how it says the step is done.
func (r *Reconciler) replaceStep(ctx context.Context, ps *pass, name string, e *ledgerEntry) (waiting string, err error) {
	old := e.Replaces
	onOld := r.opts.Self == old
	switch e.NextStep() {
	case plan.StepPrepare:
		if err := r.checkEtcdVersion(ctx, ps); err != nil {
			return "", err
		}
		if err := r.raiseKubeadmConfig(ctx, e.KubernetesVersion); err != nil {
			return "", err
		}
		e.Step = plan.StepJoin

	case plan.StepJoin:
		spec := e.MachineSpec(name)
		images, err := r.clusterImages(ctx)
		if err != nil {
			return "", err
		}
		spec.Images = imagesFor(images, ps.spec, spec.Role)
		b, err := r.opts.Bootstrapper.Bootstrap(ctx, ps.spec, spec)
		if err != nil {
			return "", fmt.Errorf("rendering the join of control-plane machine %s: %w", name, err)
		}
		spec.Bootstrap = b
		_, err = r.provider.CreateMachines(ctx, []providers.MachineSpec{spec})
		r.countAction("Create", err)
		if err != nil {
			return "", err
		}
		e.Step = plan.StepWaitReady

	case plan.StepWaitReady:
		why, err := r.controlPlaneHealthy(ctx, ps, name)
		if err == nil && why == "" {
			e.Step = plan.StepDrainOld
			return "", nil
		}
		limit := ps.spec.Spec.Health.NodeStartupTimeout.Duration
		if e.StepStartedAt != nil && ps.now.Sub(*e.StepStartedAt) > limit {
			msg := fmt.Sprintf("new control-plane machine %s is not healthy %s after it was asked for (nodeStartupTimeout %s): %s; rolling back",
				name, ps.now.Sub(*e.StepStartedAt).Truncate(time.Second), limit, why)
			if err != nil {
				msg += " (last error: " + err.Error() + ")"
			}
			r.opts.Logger.Info("Rolling back the control-plane replacement", "machine", name, "reason", msg)
			r.event(ps.specCM, corev1.EventTypeWarning, "ControlPlaneJoinFailed", "%s", msg)
			e.Step = plan.StepRollBack
			return "", nil
		}
		return why, err

	case plan.StepRollBack:
		// Only an agent that does not run on the new machine gets here
		// (the handover comes after this step could).
		eps := r.etcdEndpoints(ps, name)
		members, err := r.opts.Etcd.Members(ctx, eps)
		if err != nil {
			return "", fmt.Errorf("listing etcd members: %w", err)
		}
		for _, m := range members {
			if m.Name == name && len(members) > 1 {
				if err := r.opts.Etcd.RemoveMember(ctx, eps, m.ID); err != nil {
					return "", fmt.Errorf("removing etcd member %s: %w", name, err)
				}
			}
		}
		if err := r.provider.DeleteMachine(ctx, name); err != nil {
			return "", fmt.Errorf("deleting machine %s: %w", name, err)
		}
		if err := r.opts.Client.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return "", fmt.Errorf("deleting node %s: %w", name, err)
		}
		delete(ps.led.Entries, name)
		return "", nil

	case plan.StepDrainOld:
		if e.DrainStartedAt == nil {
			now := ps.now
			e.DrainStartedAt = &now
		}
		keep := func(p *autoscale.Pod) bool {
			return p.Namespace == r.opts.Namespace && agentSelector.Matches(labels.Set(p.Labels))
		}
		progress, err := r.drainer.StepKeeping(ctx, old, keep)
		if err != nil {
			return "", err
		}
		e.PodsLeft, e.BlockedBy = progress.PodsLeft, progress.BlockedBy
		timeout := ps.spec.Spec.Rollout.DrainTimeout.Duration
		switch {
		case progress.Done:
		case ps.now.Sub(*e.DrainStartedAt) >= timeout:
			r.event(ps.specCM, corev1.EventTypeWarning, "DrainTimedOut",
				"Drain of control-plane machine %s has run past drainTimeout %s (%d pods left, blocked by %v); replacing it anyway", old, timeout, progress.PodsLeft, progress.BlockedBy)
		default:
			ps.drains = append(ps.drains, drainStatus(old, *e.DrainStartedAt, progress.PodsLeft, progress.BlockedBy))
			if len(progress.BlockedBy) > 0 {
				return fmt.Sprintf("draining %s: %d pods left, evictions refused by PodDisruptionBudget %s", old, progress.PodsLeft,
					strings.Join(progress.BlockedBy, ", ")), nil
			}
			return fmt.Sprintf("draining %s: %d pods left", old, progress.PodsLeft), nil
		}
		e.Step = plan.StepHandover

	case plan.StepHandover:
		if !onOld {
			// The agent that reads this runs elsewhere: the handover is done.
			e.Step = plan.StepRemoveMember
			return "", nil
		}
		return r.handOver(ctx, ps, name, old)

	case plan.StepRemoveMember:
		if onOld {
			return "waiting for the agent on " + name + " to take over", nil
		}
		// Again, in case the old agent went before it could: taking the
		// endpoint is idempotent.
		if err := r.provider.MoveEndpoint(ctx, name); err != nil {
			return "", fmt.Errorf("moving the control-plane endpoint to %s: %w", name, err)
		}
		if err := r.removeMember(ctx, ps, old); err != nil {
			return "", err
		}
		e.Step = plan.StepDeleteOldMachine

	case plan.StepDeleteOldMachine:
		if onOld {
			return "waiting for the agent on " + name + " to take over", nil
		}
		err := r.provider.DeleteMachine(ctx, old)
		r.countAction("Delete", err)
		if err != nil {
			return "", fmt.Errorf("deleting machine %s: %w", old, err)
		}
		e.Step = plan.StepDeleteOldNode

	case plan.StepDeleteOldNode:
		if onOld {
			return "waiting for the agent on " + name + " to take over", nil
		}
		// Explicitly: nothing else deletes a control-plane Node, and a
		// stale one would keep its pods Terminating (cluster-api#2915).
		err := r.opts.Client.CoreV1().Nodes().Delete(ctx, old, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return "", fmt.Errorf("deleting node %s: %w", old, err)
		}
		delete(ps.led.Entries, name)

	default:
		return "", fmt.Errorf("unknown step %q", e.Step)
	}
	return "", nil
}

func drainStatus(machine string, started time.Time, left int, by []string) v1alpha1.DrainStatus {
	return v1alpha1.DrainStatus{Machine: machine, StartedAt: started, PodsLeft: left, BlockedBy: by}
}

// etcdEndpoints are the client URLs of the control-plane Nodes' etcd
// members (each control plane runs one, stacked), from the Node cache.
func (r *Reconciler) etcdEndpoints(ps *pass, except string) []string {
	var eps []string
	for _, n := range ps.nodes {
		if _, cp := n.Labels[controlPlaneLabel]; !cp || n.Name == except {
			continue
		}
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP {
				eps = append(eps, "https://"+net.JoinHostPort(a.Address, "2379"))
			}
		}
	}
	slices.Sort(eps)
	return eps
}

// checkEtcdVersion refuses to add a member to an etcd 3.5 older than
// minEtcd35: a 3.6 member joining it can leave the cluster broken.
func (r *Reconciler) checkEtcdVersion(ctx context.Context, ps *pass) error {
	for _, ep := range r.etcdEndpoints(ps, "") {
		st, err := r.opts.Etcd.Status(ctx, ep)
		if err != nil {
			return fmt.Errorf("reading etcd's version before the replacement: %w", err)
		}
		if strings.HasPrefix(st.Version, "3.5.") && plan.VersionNewer(minEtcd35, st.Version) {
			return fmt.Errorf("etcd at %s runs %s; a new control plane's etcd 3.6 member may join only etcd %s or later (etcd-io/etcd#19557, #20793): "+
				"upgrade etcd first", ep, st.Version, minEtcd35)
		}
	}
	return nil
}

// raiseKubeadmConfig sets the cluster's kubeadm ClusterConfiguration to
// version, with the etcd Seed runs for it: a joining control plane deploys
// what the ConfigMap says, not its kubeadm's version (kubeadm join reads
// the ClusterConfiguration from the cluster). Writing the same values
// again changes nothing.
func (r *Reconciler) raiseKubeadmConfig(ctx context.Context, version string) error {
	cms := r.opts.Client.CoreV1().ConfigMaps(metav1.NamespaceSystem)
	cm, err := cms.Get(ctx, "kubeadm-config", metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("reading kube-system/kubeadm-config: %w", err)
	}
	var cc map[string]any
	if err := yaml.Unmarshal([]byte(cm.Data["ClusterConfiguration"]), &cc); err != nil {
		return fmt.Errorf("reading the ClusterConfiguration of kube-system/kubeadm-config: %w", err)
	}
	if cc == nil {
		return errors.New("kube-system/kubeadm-config has no ClusterConfiguration")
	}
	cc["kubernetesVersion"] = version
	etcdCfg, _ := cc["etcd"].(map[string]any)
	if etcdCfg == nil {
		etcdCfg = map[string]any{}
	}
	local, _ := etcdCfg["local"].(map[string]any)
	if local == nil {
		local = map[string]any{}
	}
	if tag := bootstrap.EtcdImageTag(version); tag != "" {
		local["imageTag"] = tag
	} else {
		delete(local, "imageTag")
	}
	etcdCfg["local"] = local
	cc["etcd"] = etcdCfg
	if err := addAPIServerArgs(cc); err != nil {
		return err
	}
	out, err := yaml.Marshal(cc)
	if err != nil {
		return err
	}
	if cm.Data["ClusterConfiguration"] == string(out) {
		return nil
	}
	cm.Data["ClusterConfiguration"] = string(out)
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("raising kube-system/kubeadm-config to %s: %w", version, err)
	}
	r.opts.Logger.Info("Raised the kubeadm configuration", "kubernetesVersion", version)
	return nil
}

// controlPlaneStaticPods are the mirror pods a healthy control plane runs.
var controlPlaneStaticPods = []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd"}

// controlPlaneHealthy says what the new control plane still lacks: a Ready
// Node with the control-plane label, its static pods Ready, its etcd
// member a voter. "" means healthy.
func (r *Reconciler) controlPlaneHealthy(ctx context.Context, ps *pass, name string) (string, error) {
	var node *corev1.Node
	for _, n := range ps.nodes {
		if n.Name == name {
			node = n
		}
	}
	switch {
	case node == nil:
		return "waiting for node " + name + " to register", nil
	case !nodeReady(node):
		return "waiting for node " + name + " to be Ready", nil
	}
	if _, ok := node.Labels[controlPlaneLabel]; !ok {
		return "waiting for node " + name + " to be labelled " + controlPlaneLabel, nil
	}
	for _, c := range controlPlaneStaticPods {
		pod, err := r.opts.Client.CoreV1().Pods(metav1.NamespaceSystem).Get(ctx, c+"-"+name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return "waiting for " + c + " on " + name + " to start", nil
		}
		if err != nil {
			return "", err
		}
		if !podReady(pod) {
			return "waiting for " + c + " on " + name + " to be Ready", nil
		}
	}
	members, err := r.opts.Etcd.Members(ctx, r.etcdEndpoints(ps, ""))
	if err != nil {
		return "", fmt.Errorf("listing etcd members: %w", err)
	}
	for _, m := range members {
		if m.Name == name {
			if m.IsLearner {
				return "waiting for the etcd member of " + name + " to be promoted from learner", nil
			}
			return "", nil
		}
	}
	return "waiting for " + name + " to join etcd", nil
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// handOver, run by the agent on the old control plane, makes way for an
// agent on the new one: the etcd leadership leaves the old member; a
// standby agent must be Ready elsewhere (the standby on the old machine is
// moved there: the node is cordoned, so it comes back on the new one);
// then this agent's own pod is evicted, and its Lease, released as it
// stops, goes to the standby. With a single agent replica there is no
// standby to wait for: the agent evicts itself, and its replacement, on the
// new machine, resumes from the ledger.
func (r *Reconciler) handOver(ctx context.Context, ps *pass, name, old string) (string, error) {
	if err := r.moveEtcdLeader(ctx, ps, name, old); err != nil {
		return "", err
	}
	// The endpoint follows the new API server before the old one leaves
	// (AWS moves its address; Docker's load balancer follows health checks).
	if err := r.provider.MoveEndpoint(ctx, name); err != nil {
		return "", fmt.Errorf("moving the control-plane endpoint to %s: %w", name, err)
	}
	pods, err := r.opts.Client.CoreV1().Pods(r.opts.Namespace).List(ctx, metav1.ListOptions{LabelSelector: agentSelector.String()})
	if err != nil {
		return "", fmt.Errorf("listing agent pods: %w", err)
	}
	var others []*corev1.Pod
	standby := false
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.Name == r.opts.Identity || p.DeletionTimestamp != nil {
			continue
		}
		if p.Spec.NodeName == old {
			others = append(others, p)
			continue
		}
		if p.Spec.NodeName != "" && podReady(p) {
			standby = true
		}
	}
	if !standby && len(others) > 0 {
		for _, p := range others {
			if err := r.evictPod(ctx, p.Namespace, p.Name); err != nil {
				return "", err
			}
		}
		return "waiting for a standby agent to be Ready on " + name, nil
	}
	if !standby {
		// Only this agent, or standbys not Ready yet elsewhere.
		for i := range pods.Items {
			p := &pods.Items[i]
			if p.Name != r.opts.Identity && p.DeletionTimestamp == nil && p.Spec.NodeName != old {
				return "waiting for the standby agent " + p.Name + " to be Ready on " + p.Spec.NodeName, nil
			}
		}
	}
	if why, err := r.stopAPIServer(ctx, ps, old); why != "" || err != nil {
		return why, err
	}
	r.opts.Logger.Info("Handing over to the agent on the new control plane", "old", old, "new", name, "standby", standby)
	r.event(ps.specCM, corev1.EventTypeNormal, "ControlPlaneHandover", "The agent on %s leaves for the one on %s", old, name)
	if err := r.evictPod(ctx, r.opts.Namespace, r.opts.Identity); err != nil {
		return "", err
	}
	// Leave at once rather than when the kubelet gets round to the
	// eviction: resigning releases the Lease to the standby.
	if r.opts.Resign != nil {
		r.opts.Logger.Info("Resigning the lead to the agent on the new control plane", "new", name)
		r.opts.Resign()
	}
	return "the agent on " + old + " is leaving", nil
}

// stoppedSuffix marks a static pod manifest the agent took out of the
// kubelet's sight (it ignores dot files).
const stoppedSuffix = ".stopped-by-seed"

// stopAPIServer stops the old control plane's API server before its etcd
// member goes, by taking its static pod manifest out of the kubelet's
// directory (mounted into the agent's pod). Stopping gracefully, the API
// server takes its address out of the kubernetes Service, so in-cluster
// clients stop reaching it, instead of reaching, until its endpoint lease
// runs out, an API server whose etcd is gone (cluster-api#2652). It returns
// what it waits for until the API server's address has left the Service.
func (r *Reconciler) stopAPIServer(ctx context.Context, ps *pass, old string) (string, error) {
	manifest := filepath.Join(r.opts.ManifestsDir, "kube-apiserver.yaml")
	stopped := filepath.Join(r.opts.ManifestsDir, ".kube-apiserver.yaml"+stoppedSuffix)
	switch _, err := os.Stat(manifest); {
	case err == nil:
		if err := os.Rename(manifest, stopped); err != nil {
			return "", fmt.Errorf("stopping the API server of %s: %w", old, err)
		}
		r.apiServerStopped = ps.now
		r.opts.Logger.Info("Stopping the old control plane's API server", "machine", old, "manifest", manifest)
	case errors.Is(err, fs.ErrNotExist):
		if _, err := os.Stat(stopped); err != nil {
			// Neither: the node's manifests are not mounted (an agent
			// installed by an older seed). The load balancer's health
			// checks still take the old API server out of rotation.
			r.opts.Logger.Info("Cannot stop the old API server gracefully: its manifest is not in the agent's view", "dir", r.opts.ManifestsDir)
			return "", nil
		}
	default:
		return "", fmt.Errorf("stopping the API server of %s: %w", old, err)
	}
	if r.apiServerStopped.IsZero() {
		r.apiServerStopped = ps.now // stopped by an agent before this one
	}
	if ps.now.Sub(r.apiServerStopped) > apiServerStopTimeout {
		r.opts.Logger.Info("The old API server has not stopped; going on", "machine", old, "after", apiServerStopTimeout)
		return "", nil
	}
	// What matters is that in-cluster clients no longer reach it: its
	// address leaves the kubernetes Service as it shuts down.
	ips := map[string]bool{}
	for _, n := range ps.nodes {
		if n.Name == old {
			for _, a := range n.Status.Addresses {
				ips[a.Address] = true
			}
		}
	}
	port := "6443"
	ep, err := r.opts.Client.CoreV1().Endpoints(metav1.NamespaceDefault).Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return "", fmt.Errorf("reading the kubernetes Service's endpoints: %w", err)
	}
	if err == nil { // else no API server publishes endpoints
		for _, sub := range ep.Subsets {
			for _, a := range sub.Addresses {
				if ips[a.IP] {
					return "waiting for the API server of " + old + " to leave the kubernetes Service", nil
				}
			}
			for _, p := range sub.Ports {
				if p.Name == "https" {
					port = strconv.Itoa(int(p.Port))
				}
			}
		}
	}
	// Then that it no longer answers. It serves on for its shutdown delay
	// (bootstrap.APIServerShutdownDelay) after leaving the Service, for the
	// clients that kube-proxy still sends to it, and it must not outlive
	// its etcd member, which the next step removes (cluster-api#2652).
	for _, n := range ps.nodes {
		if n.Name != old {
			continue
		}
		for _, a := range n.Status.Addresses {
			if a.Type != corev1.NodeInternalIP {
				continue
			}
			if r.opts.DialAPIServer(ctx, net.JoinHostPort(a.Address, port)) == nil {
				return "waiting for the API server of " + old + " to stop answering (it serves on for its shutdown delay)", nil
			}
		}
	}
	return "", nil
}

// apiServerStopTimeout bounds the wait for a stopped API server to leave
// the kubernetes Service (its endpoint lease lasts 15 s at most) and to
// stop answering (the kubelet kills it 30 s after it stopped it, kubeadm's
// static pods having the default grace period).
const apiServerStopTimeout = 30 * time.Second

// addAPIServerArgs adds to a ClusterConfiguration the kube-apiserver flags
// Seed gives every control plane (bootstrap.APIServerArgs) that it does not
// set already, so that a control plane joining a cluster an older seed made
// gets them; a flag set to another value is left as it is.
func addAPIServerArgs(cc map[string]any) error {
	apiServer, _ := cc["apiServer"].(map[string]any)
	if apiServer == nil {
		apiServer = map[string]any{}
	}
	args, ok := apiServer["extraArgs"].([]any)
	if !ok && apiServer["extraArgs"] != nil {
		return fmt.Errorf("kube-system/kubeadm-config: apiServer.extraArgs is a %T, want a list of name and value (kubeadm.k8s.io/v1beta4)", apiServer["extraArgs"])
	}
	have := map[string]bool{}
	for _, a := range args {
		if m, ok := a.(map[string]any); ok {
			if name, ok := m["name"].(string); ok {
				have[name] = true
			}
		}
	}
	want := bootstrap.APIServerArgs()
	names := slices.Sorted(maps.Keys(want))
	for _, name := range names {
		if !have[name] {
			args = append(args, map[string]any{"name": name, "value": want[name]})
		}
	}
	if len(args) > 0 {
		apiServer["extraArgs"] = args
		cc["apiServer"] = apiServer
	}
	return nil
}

// dialAPIServer is the default Options.DialAPIServer.
func dialAPIServer(ctx context.Context, addr string) error {
	d := net.Dialer{Timeout: time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	return c.Close()
}

func (r *Reconciler) evictPod(ctx context.Context, ns, name string) error {
	err := r.opts.Client.PolicyV1().Evictions(ns).Evict(ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("evicting pod %s/%s: %w", ns, name, err)
	}
	return nil
}

// moveEtcdLeader moves the etcd leadership from the old member to the
// new one, so that removing the old member costs no election.
func (r *Reconciler) moveEtcdLeader(ctx context.Context, ps *pass, name, old string) error {
	members, err := r.opts.Etcd.Members(ctx, r.etcdEndpoints(ps, ""))
	if err != nil {
		return fmt.Errorf("listing etcd members: %w", err)
	}
	var oldM, newM *etcd.Member
	for i := range members {
		switch members[i].Name {
		case old:
			oldM = &members[i]
		case name:
			newM = &members[i]
		}
	}
	if oldM == nil || newM == nil || len(oldM.ClientURLs) == 0 {
		return nil
	}
	st, err := r.opts.Etcd.Status(ctx, oldM.ClientURLs[0])
	if err != nil {
		return fmt.Errorf("reading etcd member %s: %w", old, err)
	}
	if st.Leader != oldM.ID {
		return nil
	}
	if err := r.opts.Etcd.MoveLeader(ctx, oldM.ClientURLs[0], newM.ID); err != nil {
		return fmt.Errorf("moving the etcd leadership from %s to %s: %w", old, name, err)
	}
	r.opts.Logger.Info("Moved the etcd leadership", "from", old, "to", name)
	return nil
}

// removeMember removes the old control plane's etcd member, asking the
// others; a member already gone is success. It never removes the last one.
func (r *Reconciler) removeMember(ctx context.Context, ps *pass, old string) error {
	eps := r.etcdEndpoints(ps, old)
	members, err := r.opts.Etcd.Members(ctx, eps)
	if err != nil {
		return fmt.Errorf("listing etcd members: %w", err)
	}
	for _, m := range members {
		if m.Name != old {
			continue
		}
		if len(members) == 1 {
			return errors.New("the old control plane's etcd member is the only one: not removed")
		}
		if err := r.opts.Etcd.RemoveMember(ctx, eps, m.ID); err != nil {
			return fmt.Errorf("removing etcd member %s: %w", old, err)
		}
		r.opts.Logger.Info("Removed etcd member", "member", old)
	}
	return nil
}

// clusterImages are the images a new machine may be asked to run at once:
// every DaemonSet's, the Deployments' of kube-system (CoreDNS) and of the
// agent's namespace, and those loaded by hand (ImagesConfigMap). A provider that ships images gives the machine
// those its node image lacks (another version's kube-proxy, the agent's).
func (r *Reconciler) clusterImages(ctx context.Context) ([]string, error) {
	seen := map[string]bool{}
	add := func(spec corev1.PodSpec) {
		for _, c := range slices.Concat(spec.InitContainers, spec.Containers) {
			seen[c.Image] = true
		}
	}
	dss, err := r.opts.Client.AppsV1().DaemonSets(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing DaemonSets for the images a new machine needs: %w", err)
	}
	for _, ds := range dss.Items {
		add(ds.Spec.Template.Spec)
	}
	for _, ns := range []string{metav1.NamespaceSystem, r.opts.Namespace} {
		ds, err := r.opts.Client.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, fmt.Errorf("listing Deployments for the images a new machine needs: %w", err)
		}
		for _, d := range ds.Items {
			add(d.Spec.Template.Spec)
		}
	}
	cm, err := r.opts.Client.CoreV1().ConfigMaps(r.opts.Namespace).Get(ctx, v1alpha1.ImagesConfigMap, metav1.GetOptions{})
	switch {
	case err == nil:
		for _, line := range strings.Split(cm.Data[v1alpha1.ImagesKey], "\n") {
			seen[strings.TrimSpace(line)] = true
		}
	case !apierrors.IsNotFound(err):
		return nil, fmt.Errorf("reading the loaded images %s/%s: %w", r.opts.Namespace, v1alpha1.ImagesConfigMap, err)
	}
	delete(seen, "")
	return sortedKeys(seen), nil
}
