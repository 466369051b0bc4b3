package controller

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/big"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/pkg/plan"
	"github.com/seedhq/seed/providers"
)

// Bootstrapper renders what a new machine runs on first boot to join the
// cluster (a kubeadm join with a fresh, short-lived token).
type Bootstrapper interface {
	Bootstrap(ctx context.Context, c *v1alpha1.Cluster, m providers.MachineSpec) (providers.Bootstrap, error)
}

// BootstrapperFunc adapts a function to Bootstrapper.
type BootstrapperFunc func(ctx context.Context, c *v1alpha1.Cluster, m providers.MachineSpec) (providers.Bootstrap, error)

// Bootstrap implements Bootstrapper.
func (f BootstrapperFunc) Bootstrap(ctx context.Context, c *v1alpha1.Cluster, m providers.MachineSpec) (providers.Bootstrap, error) {
	return f(ctx, c, m)
}

// Options configure a Reconciler. Client, Bootstrapper, Self and either
// Provider or NewProvider are required.
type Options struct {
	Client   kubernetes.Interface
	Provider providers.Provider
	// NewProvider builds the provider from the first valid spec, when
	// Provider is nil: the spec says which provider the cluster is on.
	NewProvider  func(ctx context.Context, c *v1alpha1.Cluster) (providers.Provider, error)
	Bootstrapper Bootstrapper
	// Namespace holds the spec, status and ledger ConfigMaps (default seed-system).
	Namespace string
	// Self is the name of the machine the agent runs on; it is never deleted.
	Self string
	// Identity names this agent replica in status and events (default Self).
	Identity string
	// Resync is how often the agent looks again with nothing happening, to
	// catch changes only the provider sees (default 30s).
	Resync time.Duration
	// ProgressInterval is how soon it looks again while work is under way (default 2s).
	ProgressInterval time.Duration
	// OrphanGracePeriod is how long a machine of the cluster that belongs to
	// no pool may live before it is removed (default 2m).
	OrphanGracePeriod time.Duration
	Clock             clock.Clock
	// Rand is the source of machine-name suffixes (default crypto/rand).
	Rand    io.Reader
	Metrics *Metrics
	// Recorder receives Events; default: the cluster's events API.
	Recorder record.EventRecorder
	Logger   logr.Logger
}

// Reconciler drives the cluster's machines towards its spec.
type Reconciler struct {
	opts     Options
	provider providers.Provider
	ledger   ledgerStore
	drainer  drainer
	events   record.EventRecorder

	nodes      corelisters.NodeLister
	configMaps corelisters.ConfigMapLister
	synced     []cache.InformerSynced
	queue      workqueue.TypedRateLimitingInterface[string]

	mu sync.Mutex
	// lastGood is the last valid spec and the resourceVersion it came from;
	// the agent acts on it alone, whatever the ConfigMap says now.
	lastGood        *v1alpha1.Cluster
	lastGoodVersion string
	lastRejected    string
	lastBlocked     map[string]string
	status          v1alpha1.ClusterStatus
	runningVersion  string
}

const queueKey = "cluster"

// New returns a Reconciler; call Run to start it.
func New(opts Options) (*Reconciler, error) {
	if opts.Client == nil || (opts.Provider == nil && opts.NewProvider == nil) || opts.Bootstrapper == nil {
		return nil, errors.New("controller: Client, Provider (or NewProvider) and Bootstrapper are required")
	}
	if opts.Self == "" {
		return nil, errors.New("controller: Self (the machine the agent runs on) is required")
	}
	if opts.Namespace == "" {
		opts.Namespace = v1alpha1.DefaultNamespace
	}
	if opts.Identity == "" {
		opts.Identity = opts.Self
	}
	if opts.Resync <= 0 {
		opts.Resync = 30 * time.Second
	}
	if opts.ProgressInterval <= 0 {
		opts.ProgressInterval = 2 * time.Second
	}
	if opts.OrphanGracePeriod <= 0 {
		opts.OrphanGracePeriod = 2 * time.Minute
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	r := &Reconciler{
		opts:        opts,
		provider:    opts.Provider,
		ledger:      ledgerStore{client: opts.Client, namespace: opts.Namespace, name: v1alpha1.LedgerConfigMap},
		drainer:     drainer{client: opts.Client},
		events:      opts.Recorder,
		lastBlocked: map[string]string{},
	}
	return r, nil
}

// Run watches the spec and the Nodes and reconciles until ctx ends.
func (r *Reconciler) Run(ctx context.Context) error {
	log := r.opts.Logger
	if r.events == nil {
		b := record.NewBroadcaster(record.WithContext(ctx))
		b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: r.opts.Client.CoreV1().Events(r.opts.Namespace)})
		defer b.Shutdown()
		r.events = b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "seed-agent", Host: r.opts.Self})
	}
	r.queue = workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](500*time.Millisecond, 30*time.Second),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "seed-agent"})
	defer r.queue.ShutDown()

	// The spec ConfigMap is watched alone (field selector), the Nodes all.
	cmFactory := informers.NewSharedInformerFactoryWithOptions(r.opts.Client, 0,
		informers.WithNamespace(r.opts.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", v1alpha1.SpecConfigMap).String()
		}))
	nodeFactory := informers.NewSharedInformerFactory(r.opts.Client, 0)
	cmInformer := cmFactory.Core().V1().ConfigMaps()
	nodeInformer := nodeFactory.Core().V1().Nodes()
	// The caches keep only what the agent reads: managedFields and a Node's
	// image list are most of an object's size and of the agent's memory.
	if err := cmInformer.Informer().SetTransform(trimObject); err != nil {
		return fmt.Errorf("trimming the spec cache: %w", err)
	}
	if err := nodeInformer.Informer().SetTransform(trimObject); err != nil {
		return fmt.Errorf("trimming the node cache: %w", err)
	}
	r.configMaps = cmInformer.Lister()
	r.nodes = nodeInformer.Lister()
	enqueue := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { r.queue.Add(queueKey) },
		UpdateFunc: func(oldObj, newObj any) { r.onUpdate(oldObj, newObj) },
		DeleteFunc: func(any) { r.queue.Add(queueKey) },
	}
	if _, err := cmInformer.Informer().AddEventHandler(enqueue); err != nil {
		return fmt.Errorf("watching the spec: %w", err)
	}
	if _, err := nodeInformer.Informer().AddEventHandler(enqueue); err != nil {
		return fmt.Errorf("watching nodes: %w", err)
	}
	cmFactory.Start(ctx.Done())
	nodeFactory.Start(ctx.Done())
	defer cmFactory.Shutdown()
	defer nodeFactory.Shutdown()
	r.synced = []cache.InformerSynced{cmInformer.Informer().HasSynced, nodeInformer.Informer().HasSynced}
	if !cache.WaitForCacheSync(ctx.Done(), r.synced...) {
		return fmt.Errorf("waiting for informer caches: %w", ctx.Err())
	}
	r.restoreLastGood(ctx)
	log.Info("Agent started", "namespace", r.opts.Namespace, "self", r.opts.Self)
	r.queue.Add(queueKey)

	go func() {
		<-ctx.Done()
		r.queue.ShutDown()
	}()
	for r.processNext(ctx) {
	}
	return nil
}

// onUpdate skips Node heartbeats that change nothing the planner reads.
func (r *Reconciler) onUpdate(oldObj, newObj any) {
	oldNode, ok1 := oldObj.(*corev1.Node)
	newNode, ok2 := newObj.(*corev1.Node)
	if ok1 && ok2 && nodeReady(oldNode) == nodeReady(newNode) &&
		oldNode.Spec.Unschedulable == newNode.Spec.Unschedulable &&
		oldNode.Spec.ProviderID == newNode.Spec.ProviderID &&
		labels.Equals(oldNode.Labels, newNode.Labels) {
		return
	}
	r.queue.Add(queueKey)
}

// Ready reports whether the informers have synced.
func (r *Reconciler) Ready() bool {
	if r.synced == nil {
		return false
	}
	for _, s := range r.synced {
		if !s() {
			return false
		}
	}
	return true
}

func (r *Reconciler) processNext(ctx context.Context) bool {
	key, quit := r.queue.Get()
	if quit {
		return false
	}
	defer r.queue.Done(key)
	after, err := r.Reconcile(ctx)
	switch {
	case ctx.Err() != nil:
		return false
	case err != nil:
		r.opts.Logger.Error(err, "Reconcile failed; retrying with backoff")
		if r.opts.Metrics != nil {
			r.opts.Metrics.reconcileErrors.Inc()
		}
		r.queue.AddRateLimited(key)
	default:
		r.queue.Forget(key)
		r.queue.AddAfter(key, after)
	}
	return true
}

// Status returns a copy of the last status written.
func (r *Reconciler) Status() v1alpha1.ClusterStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status
}

// Reconcile runs one pass: spec, observe, plan, act, report. It returns how
// soon the next pass should run.
func (r *Reconciler) Reconcile(ctx context.Context) (time.Duration, error) {
	start := r.opts.Clock.Now()
	defer func() {
		if r.opts.Metrics != nil {
			r.opts.Metrics.reconcileDuration.Observe(r.opts.Clock.Since(start).Seconds())
		}
	}()
	r.mu.Lock()
	defer r.mu.Unlock()

	now := r.opts.Clock.Now()
	st := &r.status
	st.Agent, st.LastError = r.opts.Identity, ""
	if v, err := r.opts.Client.Discovery().ServerVersion(); err == nil {
		r.runningVersion = v.GitVersion
		st.KubernetesVersion = v.GitVersion
	}

	specCM, spec := r.currentSpec(ctx, now)
	if spec == nil {
		// Nothing valid to act on yet: report and wait for a fix.
		return r.opts.Resync, r.writeStatus(ctx, nil, now)
	}

	if r.provider == nil {
		p, err := r.opts.NewProvider(ctx, spec)
		if err != nil {
			st.LastError = fmt.Sprintf("setting up the provider: %v", err)
			_ = r.writeStatus(ctx, spec, now)
			return 0, fmt.Errorf("setting up the provider: %w", err)
		}
		r.provider = p
		r.opts.Logger.Info("Provider ready", "provider", p.Name())
	}
	machines, err := r.provider.ListMachines(ctx)
	if err != nil {
		st.LastError = fmt.Sprintf("listing machines: %v", err)
		_ = r.writeStatus(ctx, spec, now)
		return 0, fmt.Errorf("listing machines: %w", err)
	}
	nodes, err := r.nodes.List(labels.Everything())
	if err != nil {
		return 0, fmt.Errorf("listing nodes from cache: %w", err)
	}
	led, err := r.ledger.load(ctx)
	if err != nil {
		return 0, err
	}

	observed, resume, ledgerChanged := r.mergeLedger(spec, machines, led, now)
	in := plan.Input{
		Cluster:           spec,
		Machines:          observed,
		Nodes:             planNodes(nodes),
		Self:              r.opts.Self,
		Now:               now,
		OrphanGracePeriod: r.opts.OrphanGracePeriod,
	}
	p := plan.Compute(in)
	r.recordPlan(specCM, p, now)

	var creates []providers.MachineSpec
	for _, a := range p.Actions {
		switch a.Type {
		case plan.Create:
			ms := *a.Create
			ms.Name = r.newMachineName(spec.Metadata.Name, ms.Pool, led, observed)
			led.Entries[ms.Name] = &ledgerEntry{Op: opCreate, Pool: ms.Pool, Role: string(ms.Role),
				MachineType: ms.MachineType, KubernetesVersion: ms.KubernetesVersion, Reason: a.Reason, RecordedAt: now}
			ledgerChanged = true
			creates = append(creates, ms)
			r.opts.Logger.Info("Creating machine", "machine", ms.Name, "pool", ms.Pool, "reason", a.Reason)
			r.event(specCM, corev1.EventTypeNormal, "CreatingMachine", "Creating machine %s in pool %s: %s", ms.Name, ms.Pool, a.Reason)
		case plan.Delete:
			if e, ok := led.Entries[a.Machine]; ok && e.Op == opDelete {
				continue
			}
			started := now
			led.Entries[a.Machine] = &ledgerEntry{Op: opDelete, Pool: a.Pool, Reason: a.Reason, RecordedAt: now, DrainStartedAt: &started}
			ledgerChanged = true
			r.opts.Logger.Info("Deleting machine", "machine", a.Machine, "pool", a.Pool, "reason", a.Reason)
			r.event(specCM, corev1.EventTypeNormal, "DeletingMachine", "Draining and deleting machine %s: %s", a.Machine, a.Reason)
		}
	}
	// The ledger is written before any provider call: if the agent dies
	// after the call, the next one finds the machine recorded and finishes
	// the job instead of starting another. A conflict here means a second
	// agent wrote in between; this pass stops and starts over.
	if ledgerChanged {
		if err := r.ledger.save(ctx, led); err != nil {
			return 0, err
		}
	}

	var errs []error
	creates = append(creates, resume...)
	errs = append(errs, r.createMachines(ctx, spec, specCM, creates, led)...)
	drains, derrs := r.progressDeletes(ctx, spec, specCM, led, now)
	errs = append(errs, derrs...)
	for _, a := range p.Actions {
		if a.Type != plan.DeleteNode {
			continue
		}
		r.opts.Logger.Info("Deleting node", "node", a.Machine, "reason", a.Reason)
		err := r.opts.Client.CoreV1().Nodes().Delete(ctx, a.Machine, metav1.DeleteOptions{})
		r.countAction("DeleteNode", err)
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("deleting node %s: %w", a.Machine, err))
		}
	}
	if err := r.ledger.save(ctx, led); err != nil {
		errs = append(errs, err)
	}

	st.Drains = drains
	r.fillStatus(spec, observed, nodes, p, now)
	if len(errs) > 0 {
		st.LastError = errors.Join(errs...).Error()
	}
	if err := r.writeStatus(ctx, spec, now); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return 0, errors.Join(errs...)
	}
	if len(led.Entries) > 0 {
		return r.opts.ProgressInterval, nil
	}
	if !converged(p) {
		return min(r.opts.Resync, 5*time.Second), nil
	}
	return r.opts.Resync, nil
}

// mergeLedger reconciles the provider's list with the ledger: machines being
// created have their creation resumed (those the provider does not list yet
// are planned as Pending), machines being deleted are marked Deleting, and
// creations the provider never shows are given up after the startup
// timeout. A creation's entry goes when a provider call for it returns
// (createMachines), not when the machine is listed.
func (r *Reconciler) mergeLedger(spec *v1alpha1.Cluster, machines []providers.Machine, led *ledger, now time.Time) ([]providers.Machine, []providers.MachineSpec, bool) {
	changed := false
	byName := make(map[string]int, len(machines))
	out := make([]providers.Machine, len(machines))
	copy(out, machines)
	for i, m := range out {
		byName[m.Name] = i
	}
	var resume []providers.MachineSpec
	for name, e := range led.Entries {
		i, listed := byName[name]
		switch e.Op {
		case opCreate:
			resumeSpec := providers.MachineSpec{Name: name, Pool: e.Pool, Role: providers.Role(e.Role),
				MachineType: e.MachineType, KubernetesVersion: e.KubernetesVersion}
			switch {
			case listed:
				// Listed is not finished: the call that made it may have
				// died between the provider's steps (a container created but
				// never started). Creation is idempotent, so ask again; the
				// entry goes when a call returns.
				resume = append(resume, resumeSpec)
			case now.Sub(e.RecordedAt) > startupTimeout(spec):
				// The provider never showed it: give up on this name; the
				// planner will ask for a fresh machine if one is still needed.
				r.opts.Logger.Info("Forgetting machine that never appeared", "machine", name, "recordedAt", e.RecordedAt)
				delete(led.Entries, name)
				changed = true
			default:
				out = append(out, providers.Machine{Name: name, Pool: e.Pool, Role: providers.Role(e.Role),
					MachineType: e.MachineType, KubernetesVersion: e.KubernetesVersion,
					Phase: providers.PhasePending, CreatedAt: e.RecordedAt})
				resume = append(resume, resumeSpec)
			}
		case opDelete:
			if listed {
				out[i].Phase = providers.PhaseDeleting
			}
		}
	}
	return out, resume, changed
}

func startupTimeout(c *v1alpha1.Cluster) time.Duration {
	if d := c.Spec.Health.NodeStartupTimeout; d != nil && d.Duration > 0 {
		return d.Duration
	}
	return v1alpha1.DefaultNodeStartupTimeout
}

// createMachines renders each machine's bootstrap (its own join token) and
// asks the provider for all of them: in one call when the provider can
// batch, else in parallel. A machine whose request can never succeed is
// dropped from the ledger; any other failure leaves it there to be resumed.
func (r *Reconciler) createMachines(ctx context.Context, spec *v1alpha1.Cluster, specCM *corev1.ConfigMap, specs []providers.MachineSpec, led *ledger) []error {
	if len(specs) == 0 {
		return nil
	}
	errs := make([]error, len(specs))
	parallel(len(specs), func(i int) {
		b, err := r.opts.Bootstrapper.Bootstrap(ctx, spec, specs[i])
		if err != nil {
			errs[i] = fmt.Errorf("rendering bootstrap for machine %s: %w", specs[i].Name, err)
			return
		}
		specs[i].Bootstrap = b
	})
	var ready []int
	for i, err := range errs {
		if err == nil {
			ready = append(ready, i)
		}
	}
	if bc, ok := r.provider.(providers.BatchCreator); ok && len(ready) > 1 {
		batch := make([]providers.MachineSpec, len(ready))
		for k, i := range ready {
			batch[k] = specs[i]
		}
		if _, err := bc.CreateMachines(ctx, batch); err != nil {
			for _, i := range ready {
				errs[i] = fmt.Errorf("creating machines %s…: %w", specs[i].Name, err)
			}
		}
	} else {
		parallel(len(ready), func(k int) {
			i := ready[k]
			if _, err := r.provider.CreateMachine(ctx, specs[i]); err != nil {
				errs[i] = fmt.Errorf("creating machine %s: %w", specs[i].Name, err)
			}
		})
	}
	var out []error
	for i, err := range errs {
		r.countAction("Create", err)
		if err == nil {
			// The provider finished the machine: nothing left to resume.
			delete(led.Entries, specs[i].Name)
			continue
		}
		if providers.IsInvalid(err) || providers.IsCapacity(err) {
			delete(led.Entries, specs[i].Name)
		}
		r.event(specCM, corev1.EventTypeWarning, "CreateFailed", "%v", err)
		out = append(out, err)
	}
	return out
}

// parallel runs f(0..n-1) with at most 8 at a time and waits for all.
func parallel(n int, f func(i int)) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			f(i)
		}()
	}
	wg.Wait()
}

// progressDeletes moves every recorded deletion one step: drain, then delete
// the machine and its Node once the node is empty or the drain timed out.
func (r *Reconciler) progressDeletes(ctx context.Context, spec *v1alpha1.Cluster, specCM *corev1.ConfigMap, led *ledger, now time.Time) ([]v1alpha1.DrainStatus, []error) {
	var drains []v1alpha1.DrainStatus
	var errs []error
	timeout := v1alpha1.DefaultDrainTimeout
	if d := spec.Spec.Rollout.DrainTimeout; d != nil && d.Duration > 0 {
		timeout = d.Duration
	}
	for _, name := range sortedKeys(led.Entries) {
		e := led.Entries[name]
		if e.Op != opDelete {
			continue
		}
		if name == r.opts.Self {
			// Never reached through the planner; a hand-edited ledger must not
			// make the agent delete the machine it runs on either.
			delete(led.Entries, name)
			continue
		}
		started := e.RecordedAt
		if e.DrainStartedAt != nil {
			started = *e.DrainStartedAt
		}
		progress, err := r.drainer.step(ctx, name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !progress.Done {
			ds := v1alpha1.DrainStatus{Machine: name, StartedAt: started, BlockedBy: progress.BlockedBy, PodsLeft: progress.PodsLeft}
			if now.Sub(started) < timeout {
				drains = append(drains, ds)
				if len(progress.BlockedBy) > 0 {
					r.blocked(specCM, "drain/"+name, "DrainBlocked",
						fmt.Sprintf("Drain of machine %s is blocked by PodDisruptionBudget %s (%d pods left); after drainTimeout %s the machine is deleted anyway",
							name, strings.Join(progress.BlockedBy, ", "), progress.PodsLeft, timeout))
				}
				continue
			}
			// Policy: a drain that outlives drainTimeout does not hold the
			// cluster hostage; the machine goes, as Cluster API does, and the
			// pods are rescheduled by their controllers.
			r.opts.Logger.Info("Drain timed out; deleting machine anyway", "machine", name, "podsLeft", progress.PodsLeft, "blockedBy", progress.BlockedBy)
			r.event(specCM, corev1.EventTypeWarning, "DrainTimedOut",
				"Drain of machine %s timed out after %s with %d pods left (blocked by %s); deleting it anyway", name, timeout, progress.PodsLeft, strings.Join(progress.BlockedBy, ", "))
		}
		delete(r.lastBlocked, "drain/"+name)
		err = r.provider.DeleteMachine(ctx, name)
		r.countAction("Delete", err)
		if err != nil {
			errs = append(errs, fmt.Errorf("deleting machine %s: %w", name, err))
			continue
		}
		if err := r.opts.Client.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("deleting node %s: %w", name, err))
			continue
		}
		r.opts.Logger.Info("Deleted machine", "machine", name, "reason", e.Reason)
		r.event(specCM, corev1.EventTypeNormal, "DeletedMachine", "Deleted machine %s", name)
		delete(led.Entries, name)
	}
	return drains, errs
}

// newMachineName picks "<cluster>-<pool>-<5 random>", unused by any machine
// or ledger entry.
func (r *Reconciler) newMachineName(cluster, pool string, led *ledger, machines []providers.Machine) string {
	const alphabet = "bcdfghjklmnpqrstvwxz2456789"
	prefix := cluster + "-" + pool
	if len(prefix) > 56 {
		prefix = strings.TrimRight(prefix[:56], "-")
	}
	taken := func(n string) bool {
		if _, ok := led.Entries[n]; ok {
			return true
		}
		for _, m := range machines {
			if m.Name == n {
				return true
			}
		}
		return false
	}
	for {
		var b strings.Builder
		for range 5 {
			i, err := rand.Int(r.opts.Rand, big.NewInt(int64(len(alphabet))))
			if err != nil {
				panic(fmt.Sprintf("reading randomness: %v", err)) // crypto/rand does not fail
			}
			b.WriteByte(alphabet[i.Int64()])
		}
		if n := prefix + "-" + b.String(); !taken(n) {
			return n
		}
	}
}

func (r *Reconciler) countAction(action string, err error) {
	if r.opts.Metrics == nil {
		return
	}
	result := "success"
	if err != nil {
		result = "error"
	}
	r.opts.Metrics.actions.WithLabelValues(action, result).Inc()
}

// event records an Event on the spec ConfigMap, where `kubectl describe`
// shows users what the agent did with their spec.
func (r *Reconciler) event(cm *corev1.ConfigMap, kind, reason, format string, args ...any) {
	if cm == nil || r.events == nil {
		return
	}
	r.events.Eventf(cm, kind, reason, format, args...)
}

// blocked records a decision not to act, once per distinct message.
func (r *Reconciler) blocked(cm *corev1.ConfigMap, key, reason, msg string) {
	if r.lastBlocked[key] == msg {
		return
	}
	r.lastBlocked[key] = msg
	r.opts.Logger.Info("Not acting", "reason", msg)
	r.event(cm, corev1.EventTypeWarning, reason, "%s", msg)
}

func (r *Reconciler) recordPlan(cm *corev1.ConfigMap, p plan.Plan, now time.Time) {
	seen := map[string]bool{}
	for _, c := range p.Conditions {
		if c.Type == plan.ConditionRemediationHalted {
			seen["plan/halted"] = true
			r.blocked(cm, "plan/halted", "RemediationHalted", c.Message)
		}
	}
	for _, a := range p.Actions {
		if a.Type != plan.Blocked {
			continue
		}
		key := "plan/" + a.Pool + "/" + a.Machine
		seen[key] = true
		r.blocked(cm, key, "ActionBlocked", a.Reason)
	}
	for key := range r.lastBlocked {
		if strings.HasPrefix(key, "plan/") && !seen[key] {
			delete(r.lastBlocked, key)
		}
	}
}

func converged(p plan.Plan) bool {
	for _, a := range p.Actions {
		if a.Type != plan.Blocked {
			return false
		}
	}
	for _, ps := range p.Pools {
		if ps.Ready != ps.Desired || ps.Updated != ps.Desired || ps.Current != ps.Desired {
			return false
		}
	}
	return true
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// trimObject drops what the agent never reads from cached objects.
func trimObject(obj any) (any, error) {
	if m, ok := obj.(metav1.Object); ok {
		m.SetManagedFields(nil)
	}
	if n, ok := obj.(*corev1.Node); ok {
		n.Status.Images = nil
	}
	return obj, nil
}
