package controller

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the reconciler's Prometheus metrics.
type Metrics struct {
	reconcileDuration prometheus.Histogram
	actions           *prometheus.CounterVec
	machines          *prometheus.GaugeVec
	specErrors        prometheus.Counter
	reconcileErrors   prometheus.Counter
	wakes             *prometheus.CounterVec
	replacementStep   *prometheus.GaugeVec
	remediation       prometheus.Gauge
	drainBlocked      *prometheus.GaugeVec
	backupLastSuccess prometheus.Gauge
	backupScheduled   prometheus.Gauge

	pendingPods     *prometheus.GaugeVec
	scaleUpLatency  prometheus.Histogram
	unneededNodes   prometheus.Gauge
	scaleDownBlocks *prometheus.GaugeVec
}

// passBuckets are narrow (a quarter or a third apart) from 100 ms to 2 s,
// where a pass's targets are (200 ms at 1,000 nodes, 1 s at 5,000), and
// both targets are bounds, so how many passes exceed one is exact; doubling
// buckets put a 301 ms "p99" on passes that took anything from 160 to 320.
var passBuckets = []float64{0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.125, 0.15, 0.175, 0.2, 0.25, 0.3,
	0.4, 0.5, 0.6, 0.8, 1, 1.25, 1.5, 2, 3, 5, 10, 20, 40}

// NewMetrics creates the reconciler metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		reconcileDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "seed_reconcile_duration_seconds",
			Help:    "Time one reconcile takes, from reading the spec to writing status.",
			Buckets: passBuckets,
		}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seed_actions_total",
			Help: "Actions the agent carried out, by kind and result.",
		}, []string{"action", "result"}),
		machines: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "seed_machines",
			Help: "Machines of the cluster, by pool and phase.",
		}, []string{"pool", "phase"}),
		specErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "seed_spec_errors_total",
			Help: "Spec versions rejected as invalid.",
		}),
		reconcileErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "seed_reconcile_errors_total",
			Help: "Reconciles that ended in an error and were retried.",
		}),
		wakes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seed_reconcile_wakes_total",
			Help: "What asked for a pass, by source: spec, node, pod (found unschedulable), timer (a pass asked to come back), retry (after an error), start. Asks made while a pass is already due count but add no pass.",
		}, []string{"source"}),
		replacementStep: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "seed_upgrade_step",
			Help: "1 for the step a control-plane replacement (an upgrade, or a new machine type) stands at, 0 for the others; all 0 when none runs.",
		}, []string{"step"}),
		remediation: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "seed_remediation_halted",
			Help: "1 while too many machines are unhealthy at once (spec.health.maxUnhealthy) and none is replaced for being unhealthy, else 0.",
		}),
		drainBlocked: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "seed_drain_blocked_seconds",
			Help: "For each machine whose drain a PodDisruptionBudget blocks, how long ago the drain started; absent for drains that progress.",
		}, []string{"machine"}),
		backupLastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "seed_backup_last_success_timestamp_seconds",
			Help: "When the newest good Velero backup (Completed, no errors, every item) completed, in Unix seconds; 0 when there is none or backups are off.",
		}),
		backupScheduled: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "seed_backup_scheduled",
			Help: "1 while backups are enabled and spec.backup.schedule is set (the agent keeps a Velero Schedule), else 0.",
		}),
	}
	m.pendingPods = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "seed_autoscaler_pending_pods",
		Help: "Pods the scheduler could not place, by the autoscaler's verdict: FitsExisting, WaitsForMachine, ScaleUp, NoPool, NotSimulated.",
	}, []string{"verdict"})
	m.scaleUpLatency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "seed_autoscaler_scale_up_latency_seconds",
		Help:    "From a pod found unschedulable to the provider call creating the machine it triggered.",
		Buckets: prometheus.ExponentialBuckets(0.05, 2, 12),
	})
	m.unneededNodes = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "seed_autoscaler_unneeded_nodes",
		Help: "Nodes of autoscaled pools the autoscaler finds unneeded (their timer runs, or they are being removed).",
	})
	m.scaleDownBlocks = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "seed_autoscaler_scale_down_blocked_nodes",
		Help: "Nodes of autoscaled pools unneeded by their load but kept, by the reason they are kept.",
	}, []string{"reason"})
	for _, v := range []string{"FitsExisting", "WaitsForMachine", "ScaleUp", "NoPool", "NotSimulated"} {
		m.pendingPods.WithLabelValues(v)
	}
	for _, s := range []string{wakeSpec, wakeNode, wakePod, wakeTimer, wakeRetry, wakeStart} {
		m.wakes.WithLabelValues(s)
	}
	reg.MustRegister(m.pendingPods, m.scaleUpLatency, m.unneededNodes, m.scaleDownBlocks)
	reg.MustRegister(m.backupLastSuccess, m.backupScheduled)
	reg.MustRegister(m.reconcileDuration, m.actions, m.machines, m.specErrors, m.reconcileErrors, m.wakes, m.replacementStep,
		m.remediation, m.drainBlocked)
	return m
}

// Sources of a pass, for seed_reconcile_wakes_total.
const (
	wakeSpec  = "spec"
	wakeNode  = "node"
	wakePod   = "pod"
	wakeTimer = "timer"
	wakeRetry = "retry"
	wakeStart = "start"
)
