package v1alpha1

import (
	"slices"
	"time"
)

// Names of the objects the agent reads and writes, in its namespace.
const (
	DefaultNamespace = "seed-system"
	// SpecConfigMap holds the user's spec under SpecKey; users edit it.
	SpecConfigMap = "seed-cluster"
	SpecKey       = "cluster.yaml"
	// StatusConfigMap holds the agent's report under StatusKey. It is a
	// separate object so users editing the spec never conflict with it.
	StatusConfigMap = "seed-status"
	StatusKey       = "status.yaml"
	// AppliedSpecKey is where the status ConfigMap also keeps the last
	// valid spec, the one the agent acts on.
	AppliedSpecKey = "applied-spec.yaml"
	// LedgerConfigMap records machines the agent is creating or deleting,
	// before it asks the provider, so a crash never loses track of one.
	LedgerConfigMap = "seed-machines"
	// ImagesConfigMap lists, under ImagesKey, one per line, the images
	// loaded into the cluster's machines by hand (`seed load image`): the
	// agent gives them to every machine it creates, on providers that ship
	// images.
	ImagesConfigMap = "seed-images"
	ImagesKey       = "images"
	// LeaseName is the leader-election Lease.
	LeaseName = "seed-agent"
)

// MaxListedMachines and MaxListedActions bound the lists of the status
// (see ClusterStatus.Machines): at about 200 bytes a machine, 5,000 of
// them would come near the 1 MiB object limit.
const (
	MaxListedMachines = 100
	MaxListedActions  = 100
)

// ClusterStatus is what the agent reports about the cluster it manages.
type ClusterStatus struct {
	// Agent names the agent replica that wrote this status.
	Agent string `json:"agent,omitempty"`
	// UpdatedAt is when the status was written.
	UpdatedAt time.Time `json:"updatedAt"`
	// ObservedSpecVersion is the resourceVersion of the spec ConfigMap last read.
	ObservedSpecVersion string `json:"observedSpecVersion,omitempty"`
	// AppliedSpecVersion is the resourceVersion of the last valid spec, the
	// one the agent acts on.
	AppliedSpecVersion string `json:"appliedSpecVersion,omitempty"`
	// KubernetesVersion is the version the API server reports.
	KubernetesVersion string       `json:"kubernetesVersion,omitempty"`
	Conditions        []Condition  `json:"conditions,omitempty"`
	Pools             []PoolStatus `json:"pools,omitempty"`
	// Machines lists every machine while there are at most
	// MaxListedMachines; beyond that, only those that need a look (the
	// control plane, and machines not Running and Ready, not managed, or
	// with an operation or an error), at most MaxListedMachines of them, so
	// that the status stays far below the API server's 1 MiB object limit
	// at thousands of machines. Pools counts them all.
	Machines []MachineStatus `json:"machines,omitempty"`
	// MachinesNotListed counts the machines Machines leaves out.
	MachinesNotListed int `json:"machinesNotListed,omitempty"`
	// Plan is the pass's plan, its first MaxListedActions actions.
	Plan []PlannedAction `json:"plan,omitempty"`
	// PlanNotListed counts the planned actions Plan leaves out.
	PlanNotListed int           `json:"planNotListed,omitempty"`
	Drains        []DrainStatus `json:"drains,omitempty"`
	// ControlPlaneReplacement is the control-plane replacement under way
	// (an upgrade, or a new machine type), if any.
	ControlPlaneReplacement *ReplacementStatus `json:"controlPlaneReplacement,omitempty"`
	// Backup is the state of Velero's install, while spec.backup.enabled.
	Backup *BackupStatus `json:"backup,omitempty"`
	// Autoscaling is the autoscaler's last decision, while a pool is
	// autoscaled.
	Autoscaling *AutoscalingStatus `json:"autoscaling,omitempty"`
	SpecError   string             `json:"specError,omitempty"`
	LastError   string             `json:"lastError,omitempty"`
	Extra       map[string]string  `json:"extra,omitempty"`
}

// Condition types the agent sets.
const (
	// ConditionAdopted: the agent manages the machine it runs on.
	ConditionAdopted = "Adopted"
	// ConditionSpecValid: the latest spec is valid and in force.
	ConditionSpecValid = "SpecValid"
	// ConditionReady: every pool has its desired replicas Ready and up to date.
	ConditionReady = "Ready"
	// ConditionRemediationAllowed: false while remediation is halted by maxUnhealthy.
	ConditionRemediationAllowed = "RemediationAllowed"
	// ConditionPaused: true while spec.paused is set.
	ConditionPaused = "Paused"
	// ConditionBackupLocationAvailable: Velero is installed and has found
	// the backup store usable (set only while spec.backup.enabled).
	ConditionBackupLocationAvailable = "BackupLocationAvailable"
	// ConditionChangeWaitingForBackup is True while a risky change (an
	// upgrade, a control-plane replacement, a pool's removal) waits for
	// its backup, saying why (set only while spec.backup.enabled).
	ConditionChangeWaitingForBackup = "ChangeWaitingForBackup"
)

// BackupStatus is what the agent knows of Velero's install.
type BackupStatus struct {
	// Installed: every object of the install is applied and Velero's CRDs
	// are Established.
	Installed bool `json:"installed"`
	// Waiting says what the install waits for, when not Installed.
	Waiting string `json:"waiting,omitempty"`
	// Store is the S3 endpoint Velero writes to.
	Store string `json:"store,omitempty"`
	// LocationPhase is the BackupStorageLocation's (Available,
	// Unavailable, or empty before Velero first checked it), with Velero's
	// message and the time of its last check.
	LocationPhase       string     `json:"locationPhase,omitempty"`
	LocationMessage     string     `json:"locationMessage,omitempty"`
	LocationValidatedAt *time.Time `json:"locationValidatedAt,omitempty"`
	// Changes are the backups recorded for risky changes, one per change.
	Changes []BackupForChange `json:"changes,omitempty"`
	// LastSuccessful is the newest Backup in Velero's namespace, scheduled
	// or not, that is Completed with no errors and every item it counted
	// backed up (the gate's verdict, maxAge aside); nil when there is none.
	LastSuccessful *BackupRef `json:"lastSuccessful,omitempty"`
	// Schedule is the Velero Schedule the agent keeps while
	// spec.backup.schedule is set, as Velero reports it.
	Schedule *BackupScheduleStatus `json:"schedule,omitempty"`
}

// BackupForChange is the backup taken for one risky change and where it
// stands.
type BackupForChange struct {
	// Change is the change: upgrade-<version>,
	// replace-control-plane-<machine> or remove-pool-<pool>.
	Change string `json:"change"`
	// Backup is the Velero Backup's name, in Velero's namespace.
	Backup     string    `json:"backup"`
	RecordedAt time.Time `json:"recordedAt"`
	// Step is the agent's next step with it: create-backup, wait-backup,
	// etcd-snapshot or done.
	Step string `json:"step,omitempty"`
	// Admitted: the change went ahead on this backup.
	Admitted bool `json:"admitted,omitempty"`
	// Good, Final, Reason and Message are the verdict on it, until it
	// admits the change: Good lets the change go ahead, Final means a new
	// backup is needed, neither means wait.
	Good    bool   `json:"good,omitempty"`
	Final   bool   `json:"final,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
}

// BackupRef names one backup.
type BackupRef struct {
	Name        string    `json:"name"`
	CompletedAt time.Time `json:"completedAt"`
	// Age is how long before this report it completed.
	Age Duration `json:"age"`
}

// BackupScheduleStatus is Velero's account of the agent's Schedule.
type BackupScheduleStatus struct {
	Name string `json:"name"`
	// Cron is the Schedule's spec.schedule.
	Cron string `json:"cron"`
	// Phase is New, Enabled or FailedValidation (empty before Velero has
	// looked at it), with Velero's reasons when it failed validation.
	Phase            string   `json:"phase,omitempty"`
	ValidationErrors []string `json:"validationErrors,omitempty"`
	// LastBackup is when Velero last started a backup for it.
	LastBackup *time.Time `json:"lastBackup,omitempty"`
}

// Condition is one observation about the cluster, like Kubernetes conditions.
type Condition struct {
	Type               string    `json:"type"`
	Status             string    `json:"status"`
	Reason             string    `json:"reason,omitempty"`
	Message            string    `json:"message,omitempty"`
	LastTransitionTime time.Time `json:"lastTransitionTime"`
}

// AutoscalingStatus explains the autoscaler's last decision: for each
// autoscaled pool the size it chose, for each pending pod what becomes of
// it, for each node of an autoscaled pool why it stays or goes.
type AutoscalingStatus struct {
	// DecidedAt is when the decision shown was made: the first pass that
	// came to it (later passes that decide the same leave it, so that an
	// unchanged status is not rewritten).
	DecidedAt time.Time              `json:"decidedAt"`
	Pools     []AutoscaledPoolStatus `json:"pools,omitempty"`
	// PendingPods are the pods the scheduler could not place, at most
	// MaxListedMachines of them; PendingPodsNotListed counts the rest.
	PendingPods          []PendingPodStatus `json:"pendingPods,omitempty"`
	PendingPodsNotListed int                `json:"pendingPodsNotListed,omitempty"`
	// Nodes are the nodes of autoscaled pools not simply needed (unneeded,
	// being removed, or kept though unneeded), at most MaxListedMachines.
	Nodes          []AutoscaledNodeStatus `json:"nodes,omitempty"`
	NodesNotListed int                    `json:"nodesNotListed,omitempty"`
}

// AutoscaledPoolStatus is the size the autoscaler chose for a pool.
type AutoscaledPoolStatus struct {
	Name    string `json:"name"`
	Min     int32  `json:"minReplicas"`
	Max     int32  `json:"maxReplicas"`
	Current int32  `json:"current"`
	Desired int32  `json:"desired"`
	// Reason says why Desired differs from Current, when it does.
	Reason string `json:"reason,omitempty"`
}

// PendingPodStatus is what becomes of one pending pod.
type PendingPodStatus struct {
	Pod string `json:"pod"`
	// Verdict: FitsExisting, WaitsForMachine, ScaleUp, NoPool or
	// NotSimulated.
	Verdict string `json:"verdict"`
	Pool    string `json:"pool,omitempty"`
	// Pools says, for NoPool, why each autoscaled pool cannot take it.
	Pools   []PoolVerdict `json:"pools,omitempty"`
	Since   time.Time     `json:"since"`
	Message string        `json:"message"`
}

// PoolVerdict is why one pool cannot take a pod.
type PoolVerdict struct {
	Pool    string `json:"pool"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// AutoscaledNodeStatus is why a node of an autoscaled pool stays or goes.
type AutoscaledNodeStatus struct {
	Node  string `json:"node"`
	Pool  string `json:"pool"`
	State string `json:"state"`
	// Utilization is the larger of cpu and memory requested, in percent.
	Utilization int32 `json:"utilization"`
	// Blocker is a reason code for a node kept though unneeded.
	Blocker string `json:"blocker,omitempty"`
	Message string `json:"message"`
}

// PoolStatus counts a pool's machines.
type PoolStatus struct {
	Name      string `json:"name"`
	Desired   int32  `json:"desired"`
	Current   int32  `json:"current"`
	Ready     int32  `json:"ready"`
	Updated   int32  `json:"updated"`
	Unhealthy int32  `json:"unhealthy,omitempty"`
}

// MachineStatus is one managed machine.
type MachineStatus struct {
	Name              string `json:"name"`
	Pool              string `json:"pool"`
	Role              string `json:"role"`
	Phase             string `json:"phase"`
	NodeReady         bool   `json:"nodeReady"`
	KubernetesVersion string `json:"kubernetesVersion,omitempty"`
	ProviderID        string `json:"providerID,omitempty"`
	// Managed is true once the agent has adopted the machine: matched it to
	// the control plane or a pool of the spec in force, so that it heals,
	// scales and rolls it. Orphans, machines of removed pools and machines
	// being deleted are not managed.
	Managed bool `json:"managed"`
	// Operation is the recorded operation under way and its next step
	// ("delete/drain"), if any.
	Operation string `json:"operation,omitempty"`
	// LastError is the last failure of the machine's operation under way.
	LastError string `json:"lastError,omitempty"`
}

// PlannedAction is one step of the current plan.
type PlannedAction struct {
	Action  string `json:"action"`
	Pool    string `json:"pool,omitempty"`
	Machine string `json:"machine,omitempty"`
	Reason  string `json:"reason"`
}

// ReplacementStatus is a control-plane replacement, step by step.
type ReplacementStatus struct {
	// Old is the machine being replaced, New the one replacing it.
	Old string `json:"old"`
	New string `json:"new"`
	// KubernetesVersion is the version the new machine runs.
	KubernetesVersion string    `json:"kubernetesVersion"`
	StartedAt         time.Time `json:"startedAt"`
	// Steps are every step in order, each done, current or pending.
	Steps []ReplacementStep `json:"steps"`
}

// Step states of a ReplacementStep.
const (
	StepDone    = "done"
	StepCurrent = "current"
	StepPending = "pending"
)

// ReplacementStep is one step of a replacement.
type ReplacementStep struct {
	Name  string `json:"name"`
	State string `json:"state"`
	// Since is when the current step became current.
	Since *time.Time `json:"since,omitempty"`
	// Waiting says what the current step waits for; LastError is its last failure.
	Waiting   string `json:"waiting,omitempty"`
	LastError string `json:"lastError,omitempty"`
}

// DrainStatus is a drain under way.
type DrainStatus struct {
	Machine   string    `json:"machine"`
	StartedAt time.Time `json:"startedAt"`
	// BlockedBy names the PodDisruptionBudgets (namespace/name) refusing evictions.
	BlockedBy []string `json:"blockedBy,omitempty"`
	// PodsLeft is how many pods still have to leave.
	PodsLeft int `json:"podsLeft"`
}

// Condition returns the condition of type t, or nil.
func (s *ClusterStatus) Condition(t string) *Condition {
	for i := range s.Conditions {
		if s.Conditions[i].Type == t {
			return &s.Conditions[i]
		}
	}
	return nil
}

// RemoveCondition drops the condition of type t, if set.
func (s *ClusterStatus) RemoveCondition(t string) {
	s.Conditions = slices.DeleteFunc(s.Conditions, func(c Condition) bool { return c.Type == t })
}

// SetCondition sets a condition, keeping its transition time when the status
// did not change.
func (s *ClusterStatus) SetCondition(c Condition, now time.Time) {
	if old := s.Condition(c.Type); old != nil {
		if old.Status == c.Status {
			c.LastTransitionTime = old.LastTransitionTime
		} else {
			c.LastTransitionTime = now
		}
		*old = c
		return
	}
	c.LastTransitionTime = now
	s.Conditions = append(s.Conditions, c)
}
