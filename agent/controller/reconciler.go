package controller

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"github.com/seedhq/seed/agent/backup"
	"github.com/seedhq/seed/agent/drain"
	"github.com/seedhq/seed/agent/etcd"
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
	Client kubernetes.Interface
	// EventClient writes the agent's Events (default Client). A client of
	// its own keeps a burst of Events, one for each pending pod of a
	// scale-up, from queueing behind the same rate limit as the ledger
	// writes each create waits for, as kube-scheduler keeps its own.
	EventClient kubernetes.Interface
	// Dynamic reaches Velero's resources, for backups (required while
	// spec.backup.enabled).
	Dynamic  dynamic.Interface
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
	// Etcd reaches the control plane's etcd members, for control-plane
	// replacements (default: etcd's gateway with the client certificate in
	// EtcdPKIDir).
	Etcd EtcdMembers
	// EtcdSnapshots takes the etcd snapshot stored with every backup taken
	// for a risky change (required while spec.backup.enabled).
	EtcdSnapshots EtcdSnapshotter
	// EtcdPKIDir holds the etcd CA and a client certificate
	// (default /etc/kubernetes/pki/etcd, mounted from the node).
	EtcdPKIDir string
	// ManifestsDir is the kubelet's static pod directory of the machine the
	// agent runs on (default /etc/kubernetes/manifests, mounted from the
	// node): the agent on a control plane being replaced stops its API
	// server there.
	ManifestsDir string
	// DialAPIServer reports whether an API server accepts connections at
	// addr (host:port): nil if it does (default: a TCP dial of at most a
	// second).
	DialAPIServer func(ctx context.Context, addr string) error
	// Resign, when set, gives up the leadership at once (releasing the
	// Lease): the agent on a control plane being replaced calls it once it
	// has evicted its own pod.
	Resign func()
	// Recorder receives Events; default: the cluster's events API.
	Recorder record.EventRecorder
	Logger   logr.Logger
}

// Reconciler drives the cluster's machines towards its spec.
type Reconciler struct {
	opts     Options
	provider providers.Provider
	ledger   ledgerStore
	drainer  drain.Drainer
	events   record.EventRecorder
	// auto is the autoscaler's caches and memory; nil until Run starts them.
	auto *autoscaler
	// stepRecorded, when set (tests), runs after every ledger write that
	// records operations' next steps, before any of them is taken.
	stepRecorded func(ctx context.Context, recorded []recordedStep)

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
	// addonsAt is the version kube-proxy and CoreDNS were last found at
	// (see upgradeAddons).
	addonsAt       string
	status         v1alpha1.ClusterStatus
	runningVersion string
	// lastWritten is the status ConfigMap's content as last written, so an
	// unchanged status costs no write.
	lastWritten map[string]string
	// apiServerStopped is when this agent saw the old control plane's API
	// server stopped, during a handover.
	apiServerStopped time.Time
	// snapshotted are the backups found with their etcd snapshot stored,
	// or given one (see snapshotLatest).
	snapshotted map[string]bool
	// veleroApplied is the store Velero's install was last applied for
	// (a digest) and when (see veleroHealth).
	veleroApplied struct {
		key string
		at  time.Time
	}
	// failures are the last failure of each machine, by name, shown in
	// status until the machine's next step succeeds.
	failures map[string]string
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
	if opts.EventClient == nil {
		opts.EventClient = opts.Client
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
	if opts.ManifestsDir == "" {
		opts.ManifestsDir = "/etc/kubernetes/manifests"
	}
	if opts.DialAPIServer == nil {
		opts.DialAPIServer = dialAPIServer
	}
	if opts.EtcdPKIDir == "" {
		opts.EtcdPKIDir = "/etc/kubernetes/pki/etcd"
	}
	if opts.Etcd == nil || opts.EtcdSnapshots == nil {
		c, err := etcd.NewTLSClient(opts.EtcdPKIDir)
		switch {
		case err != nil:
			err = fmt.Errorf("the agent cannot reach etcd, which replacing the control plane and backing it up need: %w "+
				"(the agent's pod mounts the node's /etc/kubernetes/pki read-only)", err)
			if opts.Etcd == nil {
				opts.Etcd = noEtcd{err}
			}
			if opts.EtcdSnapshots == nil {
				opts.EtcdSnapshots = noSnapshots{err}
			}
		default:
			if opts.Etcd == nil {
				opts.Etcd = c
			}
			if opts.EtcdSnapshots == nil {
				// The control plane's PKI is the etcd directory's parent;
				// the snapshot waits in the pod's /tmp on its way out.
				opts.EtcdSnapshots = etcdSnapshotter{backup.Snapshotter{Etcd: c, PKIDir: filepath.Dir(opts.EtcdPKIDir),
					TempDir: os.TempDir(), Now: opts.Clock.Now}}
			}
		}
	}
	r := &Reconciler{
		opts:        opts,
		provider:    opts.Provider,
		ledger:      ledgerStore{client: opts.Client, namespace: opts.Namespace, name: v1alpha1.LedgerConfigMap},
		events:      opts.Recorder,
		lastBlocked: map[string]string{},
		failures:    map[string]string{},
		snapshotted: map[string]bool{},
	}
	return r, nil
}

// Run watches the spec and the Nodes and reconciles until ctx ends.
func (r *Reconciler) Run(ctx context.Context) error {
	log := r.opts.Logger
	if r.events == nil {
		b := record.NewBroadcaster(record.WithContext(ctx))
		b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: r.opts.EventClient.CoreV1().Events(r.opts.Namespace)})
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
	// The ledger too, on its own and with no handler (the agent's own
	// writes must not wake it): an idle pass then reads it from memory.
	ledgerFactory := informers.NewSharedInformerFactoryWithOptions(r.opts.Client, 0,
		informers.WithNamespace(r.opts.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", v1alpha1.LedgerConfigMap).String()
		}))
	factory := informers.NewSharedInformerFactory(r.opts.Client, 0)
	cmInformer := cmFactory.Core().V1().ConfigMaps()
	ledgerInformer := ledgerFactory.Core().V1().ConfigMaps()
	nodeInformer := factory.Core().V1().Nodes()
	// Drains read pods and budgets from caches: listing pods live on every
	// step of every drain costs the API server a full scan each time.
	podInformer := factory.Core().V1().Pods()
	pdbInformer := factory.Policy().V1().PodDisruptionBudgets()
	// The autoscaler reads the same cache, which keeps a compact record of
	// each pod, not the pod (podCache).
	dsInformer := factory.Apps().V1().DaemonSets()
	pods := &podCache{}
	if err := podInformer.Informer().SetTransform(pods.transform); err != nil {
		return fmt.Errorf("trimming the pod cache: %w", err)
	}
	if err := podInformer.Informer().AddIndexers(podIndexers()); err != nil {
		return fmt.Errorf("indexing the pod cache: %w", err)
	}
	if err := dsInformer.Informer().SetTransform(trimDaemonSet); err != nil {
		return fmt.Errorf("trimming the DaemonSet cache: %w", err)
	}
	// The caches keep only what the agent reads: managedFields and a Node's
	// image list are most of an object's size and of the agent's memory.
	if err := cmInformer.Informer().SetTransform(trimObject); err != nil {
		return fmt.Errorf("trimming the spec cache: %w", err)
	}
	if err := nodeInformer.Informer().SetTransform(trimObject); err != nil {
		return fmt.Errorf("trimming the node cache: %w", err)
	}
	if err := ledgerInformer.Informer().SetTransform(trimObject); err != nil {
		return fmt.Errorf("trimming the ledger cache: %w", err)
	}
	r.configMaps = cmInformer.Lister()
	r.ledger.cache = ledgerInformer.Lister()
	r.nodes = nodeInformer.Lister()
	r.drainer = drain.Drainer{Client: r.opts.Client, Nodes: r.nodes, Pods: podInformer.Informer().GetIndexer(),
		Budgets: pdbInformer.Lister(), Clock: r.opts.Clock}
	// Events on pods go to the pods' own namespaces.
	podBroadcaster := record.NewBroadcaster(record.WithContext(ctx))
	podBroadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: r.opts.EventClient.CoreV1().Events("")})
	defer podBroadcaster.Shutdown()
	r.auto = &autoscaler{pods: podInformer.Informer().GetIndexer(), daemonSets: dsInformer.Lister(), budgets: pdbInformer.Lister(),
		podEvents: podBroadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "seed-autoscaler", Host: r.opts.Self}),
		told:      map[string]string{}, triggered: map[string]time.Time{}, types: map[string]providers.MachineResources{}}
	if _, err := podInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { r.onPodChange(nil, obj) },
		UpdateFunc: r.onPodChange,
	}); err != nil {
		return fmt.Errorf("watching pods: %w", err)
	}
	enqueue := func(source string) cache.ResourceEventHandlerFuncs {
		return cache.ResourceEventHandlerFuncs{
			AddFunc:    func(any) { r.wake(source, 0) },
			UpdateFunc: func(oldObj, newObj any) { r.onUpdate(source, oldObj, newObj) },
			DeleteFunc: func(any) { r.wake(source, 0) },
		}
	}
	if _, err := cmInformer.Informer().AddEventHandler(enqueue(wakeSpec)); err != nil {
		return fmt.Errorf("watching the spec: %w", err)
	}
	if _, err := nodeInformer.Informer().AddEventHandler(enqueue(wakeNode)); err != nil {
		return fmt.Errorf("watching nodes: %w", err)
	}
	cmFactory.Start(ctx.Done())
	ledgerFactory.Start(ctx.Done())
	factory.Start(ctx.Done())
	defer cmFactory.Shutdown()
	defer ledgerFactory.Shutdown()
	defer factory.Shutdown()
	r.synced = []cache.InformerSynced{cmInformer.Informer().HasSynced, ledgerInformer.Informer().HasSynced,
		nodeInformer.Informer().HasSynced, podInformer.Informer().HasSynced, pdbInformer.Informer().HasSynced,
		dsInformer.Informer().HasSynced}
	if !cache.WaitForCacheSync(ctx.Done(), r.synced...) {
		return fmt.Errorf("waiting for informer caches: %w", ctx.Err())
	}
	r.restoreLastGood(ctx)
	log.Info("Agent started", "namespace", r.opts.Namespace, "self", r.opts.Self)
	r.wake(wakeStart, 0)

	go func() {
		<-ctx.Done()
		r.queue.ShutDown()
	}()
	for r.processNext(ctx) {
	}
	return nil
}

// onUpdate skips Node heartbeats that change nothing the planner reads.
func (r *Reconciler) onUpdate(source string, oldObj, newObj any) {
	oldNode, ok1 := oldObj.(*corev1.Node)
	newNode, ok2 := newObj.(*corev1.Node)
	if ok1 && ok2 && nodeReady(oldNode) == nodeReady(newNode) &&
		oldNode.Spec.Unschedulable == newNode.Spec.Unschedulable &&
		oldNode.Spec.ProviderID == newNode.Spec.ProviderID &&
		labels.Equals(oldNode.Labels, newNode.Labels) {
		return
	}
	r.wake(source, 0)
}

// wake asks for a pass after d (now for 0), counting the ask by source.
func (r *Reconciler) wake(source string, d time.Duration) {
	r.countWake(source)
	if d <= 0 {
		r.queue.Add(queueKey)
		return
	}
	r.queue.AddAfter(queueKey, d)
}

func (r *Reconciler) countWake(source string) {
	if r.opts.Metrics != nil {
		r.opts.Metrics.wakes.WithLabelValues(source).Inc()
	}
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
		if r.opts.Metrics != nil {
			r.opts.Metrics.reconcileErrors.Inc()
		}
		// A provider that said when to come back is believed; anything
		// else backs off exponentially.
		if wait := retryAfter(err); wait > 0 {
			r.opts.Logger.Error(err, "Reconcile failed; retrying when the provider asked", "after", wait)
			r.wake(wakeRetry, wait)
			break
		}
		r.opts.Logger.Error(err, "Reconcile failed; retrying with backoff")
		r.countWake(wakeRetry)
		r.queue.AddRateLimited(key)
	default:
		r.queue.Forget(key)
		r.wake(wakeTimer, after)
	}
	return true
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
