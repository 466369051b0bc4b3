package e2e

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/seedhq/seed/e2e/framework"
	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/providers"
)

// The upgrade the scenario makes: one minor, as a user would, on one
// control plane and a pool of two workers, in at most 15 minutes (CAPD's
// budget for a control-plane upgrade).
const (
	upgradeFrom    = "v1.33.13"
	upgradeTo      = "v1.34.2"
	upgradeWorkers = 2
	upgradeTimeout = 15 * time.Minute
)

// The agent's ledger operations (agent/controller/ledger.go): a
// control-plane replacement is keyed by the new machine's name and goes
// through replaceControlPlaneSteps in order; a worker is replaced by a
// create and a delete (drain, delete-machine, delete-node).
const (
	opReplaceControlPlane = "replace-control-plane"
	stepWaitReady         = "wait-ready"
	stepRemoveMember      = "remove-member"
	stepDeleteOldMachine  = "delete-old-machine"
	opCreate              = "create"
	opDelete              = "delete"
	stepDrain             = "drain"
)

var replaceControlPlaneSteps = []string{"prepare", "join", stepWaitReady, "drain-old", "handover", stepRemoveMember, stepDeleteOldMachine, "delete-old-node"}

// TestUpgrade: a v1.33 cluster (one control plane, two workers, rollout
// maxSurge 1 maxUnavailable 0) serving a workload under a
// PodDisruptionBudget is upgraded to v1.34 by one edit of the spec, while
// the agent's leader is killed with kill -9 when the new control plane
// joins, right after the old etcd member is removed, and while the budget
// holds a worker's drain. The control plane is replaced first, then each
// worker; at the end everything runs v1.34 on exactly the machines the
// spec asks for, etcd has one member, the kubeconfig is unchanged, no
// request to the workload failed and the budget was never broken.
func TestUpgrade(t *testing.T) {
	framework.Require(t)
	framework.Parallel(t, func(t testing.TB) { requireNodeImages(t, upgradeFrom, upgradeTo) })
	r := runUpgrade(t, true)
	r.logFigures(t)
}

// killPoint is one place the scenario kills the agent's leader.
type killPoint struct {
	name string
	// ledger is the step the ledger showed when the kill landed.
	ledger  string
	at      time.Time
	target  agentProcess
	err     error
	resumed error
	fired   bool
}

// upgradeRun is one run of the upgrade scenario and what it measured.
type upgradeRun struct {
	d        *disruption
	edit     time.Time
	done     time.Time
	oldCP    machine
	newCP    machine
	figures  disruptionFigures
	kills    []*killPoint
	cpDone   time.Duration // edit → the replacement's ledger entry done
	cpReady  time.Duration // edit → the new control plane's Node Ready
	perWork  []time.Duration
	workerUp time.Duration // first worker create → last worker delete done
}

// runUpgrade runs the scenario; with kills, it kills the agent's leader
// at the three points. Every assertion is made here; a failed one marks
// tb failed and the run goes on, so a run reports all it found.
func runUpgrade(tb testing.TB, kills bool) *upgradeRun {
	tb.Helper()
	if img := os.Getenv("SEED_NODE_IMAGE"); img != "" && img != "seed-node:"+upgradeTo {
		tb.Logf("SEED_NODE_IMAGE=%s is not used: an upgrade needs one image per version, seed-node:<version>", img)
	}
	name := framework.NewName("e2e-upgrade")
	u := &upgradeRun{}
	points := map[string]*killPoint{}
	for _, n := range []string{"new control plane joining (" + stepWaitReady + ")", "old etcd member removed (" + stepDeleteOldMachine + ")", "worker drain held by the budget"} {
		p := &killPoint{name: n}
		points[n] = p
		u.kills = append(u.kills, p)
	}
	// The ledger watch decides when to kill; the killer kills, one at a
	// time, off the watch's goroutine.
	type trigger struct {
		point *killPoint
		arm   bool // find the leader now, kill it at the next trigger
	}
	triggers := make(chan trigger, 16)
	onStep := func(key string, e ledgerEntry) {
		if !kills {
			return
		}
		send := func(tr trigger) {
			select {
			case triggers <- tr:
			default:
			}
		}
		switch {
		case e.Op == opReplaceControlPlane && e.Step == stepWaitReady:
			send(trigger{point: u.kills[0]})
		case e.Op == opReplaceControlPlane && e.Step == stepRemoveMember:
			send(trigger{point: u.kills[1], arm: true})
		case e.Op == opReplaceControlPlane && e.Step == stepDeleteOldMachine:
			send(trigger{point: u.kills[1]})
		case e.Op == opDelete && e.Step == stepDrain && e.Pool == "workers" && len(e.BlockedBy) > 0:
			send(trigger{point: u.kills[2]})
		}
	}
	d := startDisruption(tb, name, upgradeSpec(name, upgradeFrom), upgradeWorkers, onStep)
	u.d = d
	ctx, cancel := context.WithTimeout(d.ctx, upgradeTimeout+5*time.Minute)
	defer cancel()
	kubeconfig, err := os.ReadFile(d.c.Kubeconfig)
	if err != nil {
		tb.Fatal(err)
	}
	u.oldCP = d.controlPlane()
	for _, m := range machines(tb, name) {
		if m.Version != upgradeFrom {
			tb.Fatalf("machine %s is at %q before the upgrade, want %s", m.Name, m.Version, upgradeFrom)
		}
	}
	d.quiet(5 * time.Second)

	var wg sync.WaitGroup
	killerDone := make(chan struct{})
	go func() {
		defer close(killerDone)
		var armed *agentProcess
		for tr := range triggers {
			p := tr.point
			if p.fired {
				continue
			}
			if tr.arm {
				if a, err := findAgentLeader(ctx, d.c); err == nil {
					armed = &a
				}
				continue
			}
			p.fired, p.at = true, time.Now()
			var a agentProcess
			var err error
			if armed != nil && p == u.kills[1] && currentLeader(ctx, d) == armed.Pod {
				// Already found: the kill lands within the step.
				a, err = *armed, armed.kill(ctx)
			} else {
				a, err = killAgentLeader(ctx, d.c, 20*time.Second)
			}
			p.target, p.err = a, err
			p.ledger = ledgerSummary(d.ledger)
			d.tl.add(p.at, "test: kill -9 at %q: %s (err %v); ledger then: %s", p.name, a, err, p.ledger)
			if err == nil {
				wg.Add(1)
				go func() {
					defer wg.Done()
					p.resumed = waitAgentResumed(ctx, d.c, a, p.at, 3*time.Minute)
					d.tl.add(time.Now(), "test: agent resumed after the kill at %q (%v)", p.name, p.resumed)
				}()
			}
		}
	}()

	// One edit: the version, nothing else, as `kubectl edit` would.
	cm, err := d.c.Client.CoreV1().ConfigMaps(v1alpha1.DefaultNamespace).Get(ctx, v1alpha1.SpecConfigMap, metav1.GetOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	doc := cm.Data[v1alpha1.SpecKey]
	if n := strings.Count(doc, "kubernetesVersion: "+upgradeFrom); n != 1 {
		tb.Fatalf("the spec names %s %d times, want once:\n%s", upgradeFrom, n, doc)
	}
	u.edit = time.Now()
	rv := d.c.EditSpec(ctx, tb, strings.Replace(doc, "kubernetesVersion: "+upgradeFrom, "kubernetesVersion: "+upgradeTo, 1))
	d.tl.add(u.edit, "test: spec edited, kubernetesVersion %s → %s", upgradeFrom, upgradeTo)

	last := ""
	for {
		if last = clusterAt(ctx, tb, d, upgradeTo, upgradeWorkers); last == "" {
			break
		}
		sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := d.c.Status(sctx)
		scancel()
		if err == nil && st.ObservedSpecVersion == rv && st.SpecError != "" {
			d.log(d.figures(ctx), u.edit)
			tb.Fatalf("the agent refused the upgrade: %s", st.SpecError)
		}
		if time.Since(u.edit) > upgradeTimeout {
			d.log(d.figures(ctx), u.edit)
			tb.Fatalf("the cluster was not at %s %s after the edit: %s", upgradeTo, upgradeTimeout, last)
		}
		time.Sleep(2 * time.Second)
	}
	u.done = time.Now()
	d.tl.add(u.done, "test: every machine and Node at %s, the ledger empty, kube-proxy rolled out", upgradeTo)
	close(triggers)
	<-killerDone
	wg.Wait()

	u.newCP = d.controlPlane()
	if u.newCP.Name == u.oldCP.Name {
		tb.Errorf("the control-plane machine %s was not replaced", u.oldCP.Name)
	}
	checkControlPlaneAt(ctx, tb, d.c, u.newCP, upgradeTo)
	checkKubeconfigUnchanged(ctx, tb, d.c, kubeconfig, upgradeTo)
	u.checkOrder(tb)
	u.measure(tb)
	u.figures = d.figures(ctx)
	d.check(u.figures)
	d.checkImages(ctx)
	if kills {
		for _, p := range u.kills {
			switch {
			case !p.fired:
				tb.Errorf("kill point %q was never reached (ledger steps seen: %v)", p.name, ledgerSteps(d.ledger))
			case p.err != nil:
				tb.Errorf("kill at %q: %v", p.name, p.err)
			case p.resumed != nil:
				tb.Errorf("kill at %q: %v", p.name, p.resumed)
			}
		}
	}
	if st, err := d.c.Status(ctx); err != nil || st.KubernetesVersion != upgradeTo {
		tb.Logf("status: %+v (err %v)", st, err)
	}
	return u
}

// upgradeSpec is the scenario's spec. It sets no node image: one image
// would be pinned for every version, and the upgrade needs each version's
// own (seed-node:<version>).
func upgradeSpec(name, version string) string {
	return fmt.Sprintf(`apiVersion: seed.dev/v1alpha1
kind: Cluster
metadata:
  name: %s
spec:
  kubernetesVersion: %s
  provider:
    docker: {}
  rollout:
    maxSurge: 1
    maxUnavailable: 0
  nodePools:
  - name: workers
    replicas: %d
`, name, version, upgradeWorkers)
}

func currentLeader(ctx context.Context, d *disruption) string {
	l, err := d.c.Client.CoordinationV1().Leases(v1alpha1.DefaultNamespace).Get(ctx, v1alpha1.LeaseName, metav1.GetOptions{})
	if err != nil || l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

func ledgerSummary(lw *ledgerWatch) string {
	entries, _ := lw.snapshot()
	var parts []string
	for k, e := range entries {
		parts = append(parts, k+": "+e.String())
	}
	sort.Strings(parts)
	if len(parts) == 0 {
		return "empty"
	}
	return strings.Join(parts, "; ")
}

func ledgerSteps(lw *ledgerWatch) map[string][]string {
	_, _, _, steps := lw.history()
	return steps
}

// checkOrder asserts the control plane went first: no machine at the new
// version but the new control plane was created before the old
// control-plane machine was removed; and the replacement went through its
// steps in order.
func (u *upgradeRun) checkOrder(tb testing.TB) {
	tb.Helper()
	events, _ := u.d.machines.snapshot()
	var oldGone time.Time
	for _, e := range events {
		if e.Action == "destroy" && e.Name == u.oldCP.Name {
			oldGone = e.At
		}
	}
	if oldGone.IsZero() {
		tb.Errorf("no removal of the old control-plane machine %s in the engine's events", u.oldCP.Name)
		return
	}
	for _, e := range events {
		if e.Action == "create" && e.Role == string(providers.RoleWorker) && e.Version == upgradeTo && e.At.Before(oldGone) {
			tb.Errorf("worker %s at %s was created at %s, before the old control plane %s was removed at %s",
				e.Name, upgradeTo, e.At.Format("15:04:05.000"), u.oldCP.Name, oldGone.Format("15:04:05.000"))
		}
	}
	for _, m := range machinesWithRole(machines(tb, u.d.name), providers.RoleWorker) {
		if m.Created.Before(oldGone) {
			tb.Errorf("worker %s was created at %s, before the old control plane was removed at %s", m.Name, m.Created.Format("15:04:05.000"), oldGone.Format("15:04:05.000"))
		}
	}
	entries, _, _, steps := u.d.ledger.history()
	replaced := 0
	for k, e := range entries {
		if e.Op != opReplaceControlPlane {
			continue
		}
		replaced++
		if k != u.newCP.Name || e.Replaces != u.oldCP.Name {
			tb.Errorf("ledger %s: %s, want the entry of %s replacing %s", k, e, u.newCP.Name, u.oldCP.Name)
		}
		// Steps are seen in order, some perhaps too short to be seen; a
		// roll-back means the new control plane never became healthy.
		seen := steps[k]
		if slices.Contains(seen, "roll-back") {
			tb.Errorf("ledger %s: the replacement rolled back (steps %v)", k, seen)
			continue
		}
		i := 0
		for _, s := range seen {
			j := slices.Index(replaceControlPlaneSteps[i:], s)
			if j < 0 {
				tb.Errorf("ledger %s: steps %v are not in the order %v", k, seen, replaceControlPlaneSteps)
				break
			}
			i += j
		}
	}
	if replaced != 1 {
		tb.Errorf("%d control-plane replacements in the ledger, want 1: %v", replaced, entries)
	}
}

// measure works the durations out of the ledger and the Nodes.
func (u *upgradeRun) measure(tb testing.TB) {
	tb.Helper()
	entries, first, gone, _ := u.d.ledger.history()
	var creates, deletes []time.Time
	for k, e := range entries {
		switch {
		case e.Op == opReplaceControlPlane && !gone[k].IsZero():
			u.cpDone = gone[k].Sub(u.edit)
		case e.Op == opCreate && e.Pool == "workers":
			creates = append(creates, first[k])
		case e.Op == opDelete && e.Pool == "workers" && !gone[k].IsZero():
			deletes = append(deletes, gone[k])
		}
	}
	if at, ok := u.d.lb.readyAt(u.newCP.Name); ok {
		u.cpReady = at.Sub(u.edit)
	}
	slices.SortFunc(creates, func(a, b time.Time) int { return a.Compare(b) })
	slices.SortFunc(deletes, func(a, b time.Time) int { return a.Compare(b) })
	// With maxSurge 1 and maxUnavailable 0 each worker is one create then
	// one delete: pair them in order.
	for i := range min(len(creates), len(deletes)) {
		u.perWork = append(u.perWork, deletes[i].Sub(creates[i]))
	}
	if len(creates) > 0 && len(deletes) > 0 {
		u.workerUp = deletes[len(deletes)-1].Sub(creates[0])
	}
	if len(creates) != upgradeWorkers || len(deletes) != upgradeWorkers {
		tb.Errorf("the ledger shows %d worker creations and %d deletions, want %d each", len(creates), len(deletes), upgradeWorkers)
	}
}

func (u *upgradeRun) logFigures(tb testing.TB) {
	tb.Helper()
	u.d.log(u.figures, u.edit)
	var b strings.Builder
	fmt.Fprintf(&b, "upgrade %s → %s, %s replaced by %s\n", upgradeFrom, upgradeTo, u.oldCP.Name, u.newCP.Name)
	fmt.Fprintf(&b, "  whole upgrade (edit → all at %s): %s\n", upgradeTo, u.done.Sub(u.edit).Round(100*time.Millisecond))
	fmt.Fprintf(&b, "  control plane: new Node Ready %s after the edit, replacement done %s after\n", u.cpReady.Round(100*time.Millisecond), u.cpDone.Round(100*time.Millisecond))
	fmt.Fprintf(&b, "  workers: %v each (create → old one deleted), %s in all\n", roundAll(u.perWork), u.workerUp.Round(100*time.Millisecond))
	fmt.Fprintf(&b, "  longest API gap: external %s, in-cluster %s\n", u.figures.API.Longest.Round(time.Millisecond), u.figures.InCluster.LongestGap.Round(time.Millisecond))
	fmt.Fprintf(&b, "  failed workload requests: %d of %d\n", u.figures.Workload.Failed, u.figures.Workload.OK+u.figures.Workload.Failed)
	for _, p := range u.kills {
		if p.fired {
			fmt.Fprintf(&b, "  kill at %q: +%.1fs %s, ledger %s, resumed: %v\n", p.name, p.at.Sub(u.edit).Seconds(), p.target, p.ledger, errOrOK(p.resumed))
		}
	}
	tb.Log(b.String())
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(100 * time.Millisecond)
	}
	return out
}

func errOrOK(err error) string {
	if err != nil {
		return err.Error()
	}
	return "yes"
}
