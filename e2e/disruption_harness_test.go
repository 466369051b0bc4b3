package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/seedhq/seed/e2e/framework"
	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/providers"
)

// disruption brings a cluster up with a pool of workers, runs the
// workload (deployWorkload) on it, and watches it from every side while a
// test disturbs the cluster: the NodePort Service and the API server
// (external endpoint) probed from this host every 100 ms, the API server
// probed from inside (apiprobe pods), the budget watched through the
// pods, the agent's ledger and the engine's machine events recorded.
// Everything lands in one timeline.
type disruption struct {
	t       testing.TB
	c       *framework.Cluster
	name    string
	tl      *timeline
	ctx     context.Context
	stop    func()    // ends the probes and watches
	started time.Time // when the probes ran and the budget was armed

	machines *machineEvents
	lb       *lbNodes
	ledger   *ledgerWatch
	pdb      *pdbWatch
	workload gapMeter // NodePort requests from this host
	api      gapMeter // the external endpoint

	nodePort int32
	images   []string // loaded by hand; every new machine must get them
}

// startDisruption brings the cluster up from spec (a pool named workers
// of the given size) and starts every probe. onStep, if set, is called
// for every step the agent writes to its ledger (see ledgerWatch).
func startDisruption(t testing.TB, name, spec string, workers int, onStep func(string, ledgerEntry)) *disruption {
	t.Helper()
	d := &disruption{t: t, name: name, tl: &timeline{}}
	probe := framework.BuildProbeImage(t)

	// The engine's events from before the first machine, so every machine
	// (those the agent makes later too) gets the probe image.
	evCtx, stopEvents := context.WithCancel(context.Background())
	t.Cleanup(stopEvents)
	d.machines = &machineEvents{tl: d.tl, images: []string{probe}}
	if err := d.machines.run(evCtx, name, time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	d.tl.add(time.Now(), "test: seed up")
	d.c = framework.Up(t, name, spec)
	d.tl.add(time.Now(), "test: seed up returned")
	ctx, cancel := context.WithCancel(context.Background())
	// Registered after Up's: the probes stop before `seed down` runs.
	t.Cleanup(cancel)
	d.ctx = ctx
	d.stop = func() { cancel(); stopEvents() }

	framework.Eventually(t, 5*time.Minute, fmt.Sprintf("%d Ready workers", workers), func() (bool, string) {
		names, ready, err := d.c.PoolNodes(ctx, "workers")
		return err == nil && ready == workers, fmt.Sprintf("%v (%d Ready) %v", names, ready, err)
	})
	// The probe image, as `seed load image` would: into the machines
	// there are, and listed for the agent, which gives the images listed
	// to every machine it creates.
	if _, err := d.c.Client.CoreV1().ConfigMaps(v1alpha1.DefaultNamespace).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.ImagesConfigMap},
		Data:       map[string]string{v1alpha1.ImagesKey: probe + "\n"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	d.machines.stopLoading()
	d.images = []string{probe}
	for _, m := range machines(t, name) {
		d.machines.waitLoaded(t, m.Name, 3*time.Minute)
	}
	d.nodePort = deployWorkload(ctx, t, d.c, probe)

	d.lb = &lbNodes{tl: d.tl}
	go d.lb.run(ctx, d.c)
	d.pdb = &pdbWatch{tl: d.tl, minAvailable: webMinAvailable}
	go d.pdb.run(ctx, d.c, workloadNamespace, webSelector)
	d.ledger = newLedgerWatch(d.tl, onStep)
	go d.ledger.run(ctx, d.c)
	all := workers + 1
	framework.Eventually(t, time.Minute, "every node in the load balancer's rotation", func() (bool, string) {
		r := d.lb.rotation()
		return len(r) == all, fmt.Sprintf("rotation %v, want %d nodes", r, all)
	})
	// Only now: an empty rotation counts as a failure.
	go probeWorkload(ctx, d.lb, d.nodePort, &d.workload)
	if err := probeAPI(ctx, d.c.Config, &d.api); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, time.Minute, "the probes and watches under way", func() (bool, string) {
		_, synced := d.ledger.snapshot()
		_, changes, _ := d.pdb.figures()
		w, a := d.workload.figures(), d.api.figures()
		return synced && changes > 0 && w.OK > 10 && a.OK > 10,
			fmt.Sprintf("ledger read %t, pod watch %d, workload %d OK, API %d OK", synced, changes, w.OK, a.OK)
	})
	d.pdb.arm()
	d.started = time.Now()
	d.tl.add(d.started, "test: probes running, budget armed")
	return d
}

// quiet checks that the probes see nothing wrong while nothing happens, so
// a failure later is the disturbance's, not the harness's.
func (d *disruption) quiet(span time.Duration) {
	d.t.Helper()
	before, api := d.workload.figures(), d.api.figures()
	time.Sleep(span)
	after, api2 := d.workload.figures(), d.api.figures()
	if after.Failed != before.Failed || api2.Failed != api.Failed {
		d.t.Fatalf("the probes fail with nothing happening: workload %d failures %v, API %d failures %v",
			after.Failed-before.Failed, after.Failures, api2.Failed-api.Failed, api2.Failures)
	}
	d.t.Logf("at rest for %s: workload %d requests, API %d probes, no failure", span, after.OK-before.OK, api2.OK-api.OK)
}

// disruptionFigures are what the probes saw from started to now.
type disruptionFigures struct {
	Workload, API       gapFigures
	InCluster           inClusterFigures
	MinHealthy          int
	BudgetViolations    []string
	ImageLoadingFailure []string
}

func (d *disruption) figures(ctx context.Context) disruptionFigures {
	d.t.Helper()
	f := disruptionFigures{Workload: d.workload.figures(), API: d.api.figures()}
	f.MinHealthy, _, f.BudgetViolations = d.pdb.figures()
	_, f.ImageLoadingFailure = d.machines.snapshot()
	var err error
	// The reports are written every second: wait for one more round.
	time.Sleep(1500 * time.Millisecond)
	f.InCluster, err = readInClusterProbe(ctx, d.c, workloadNamespace, apiProbeName, d.started, time.Now().Add(-1500*time.Millisecond))
	if err != nil {
		d.t.Errorf("reading the in-cluster API probe's reports: %v", err)
	}
	return f
}

// check asserts what must hold after any disruption: no failed request to
// the workload, the budget never broken, the in-cluster probe covering the
// whole time (else its figures mean nothing).
func (d *disruption) check(f disruptionFigures) {
	d.t.Helper()
	if f.Workload.OK == 0 {
		d.t.Errorf("the workload probe never succeeded")
	}
	if f.Workload.Failed > 0 {
		d.t.Errorf("%d of %d requests to the workload failed: %s", f.Workload.Failed, f.Workload.Failed+f.Workload.OK, strings.Join(f.Workload.Failures, "; "))
	}
	if len(f.BudgetViolations) > 0 || f.MinHealthy < webMinAvailable {
		d.t.Errorf("the PodDisruptionBudget (minAvailable %d) was broken: fewest healthy %d; %s", webMinAvailable, f.MinHealthy, strings.Join(f.BudgetViolations, "; "))
	}
	if f.InCluster.Pods == 0 {
		d.t.Errorf("no in-cluster API probe reported: %+v", f.InCluster.Reports)
	} else if f.InCluster.LongestBlind > 5*time.Second {
		d.t.Errorf("no in-cluster API probe covered %s from %s: its figures miss that stretch", f.InCluster.LongestBlind.Round(time.Millisecond), f.InCluster.LongestBlindAt.Format("15:04:05.000"))
	}
	for _, e := range f.ImageLoadingFailure {
		d.t.Errorf("test setup: %s", e)
	}
}

// log prints the figures and the timeline from t0.
func (d *disruption) log(f disruptionFigures, t0 time.Time) {
	d.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "timeline (seconds from %s):\n%s", t0.Format("15:04:05.000"), d.tl.String(t0))
	fmt.Fprintf(&b, "workload via NodePort: %d OK, %d failed, longest gap %s at %s\n", f.Workload.OK, f.Workload.Failed,
		f.Workload.Longest.Round(time.Millisecond), f.Workload.LongestAt.Format("15:04:05.000"))
	fmt.Fprintf(&b, "API via the external endpoint: %d OK, %d failed, longest gap %s at %s; /readyz not ready %d times\n", f.API.OK, f.API.Failed,
		f.API.Longest.Round(time.Millisecond), f.API.LongestAt.Format("15:04:05.000"), f.API.NotReady)
	for _, e := range f.API.Failures {
		fmt.Fprintf(&b, "  %s\n", e)
	}
	fmt.Fprintf(&b, "API in-cluster (Service VIP), %d probe pods: %d OK, %d failed, longest gap %s (%s at %s), longest stretch no pod covered %s; /readyz not ready %d times\n",
		f.InCluster.Pods, f.InCluster.OK, f.InCluster.Failed, f.InCluster.LongestGap.Round(time.Millisecond), f.InCluster.LongestGapPod,
		f.InCluster.LongestGapAt.Format("15:04:05.000"), f.InCluster.LongestBlind.Round(time.Millisecond), f.InCluster.NotReady)
	for _, r := range f.InCluster.Reports {
		fmt.Fprintf(&b, "  %s on %s: %s–%s, %d OK, %d failed, longest gap %dms, final %t %s\n", r.Pod, r.Node,
			r.FirstOK.Format("15:04:05.000"), r.LastOK.Format("15:04:05.000"), r.OK, r.Failed, r.LongestGapMS, r.Final, r.LastError)
	}
	fmt.Fprintf(&b, "workload pods healthy: fewest %d (minAvailable %d)\n", f.MinHealthy, webMinAvailable)
	d.t.Log(b.String())
}

// controlPlane returns the cluster's only control-plane machine, found by
// its role label (its name is not fixed).
func (d *disruption) controlPlane() machine {
	d.t.Helper()
	cps := machinesWithRole(machines(d.t, d.name), providers.RoleControlPlane)
	if len(cps) != 1 {
		d.t.Fatalf("%d control-plane machines, want 1: %v", len(cps), cps)
	}
	return cps[0]
}

// checkImages asserts every machine has the images loaded by hand: those
// the agent made must have got them from it.
func (d *disruption) checkImages(ctx context.Context) {
	d.t.Helper()
	for _, m := range machines(d.t, d.name) {
		missing, err := missingImages(ctx, m.Name, d.images)
		switch {
		case err != nil:
			d.t.Errorf("%v", err)
		case len(missing) > 0:
			d.t.Errorf("machine %s lacks %v, listed in %s/%s: the agent must give those to every machine it creates",
				m.Name, missing, v1alpha1.DefaultNamespace, v1alpha1.ImagesConfigMap)
		}
	}
}
