package v1alpha1

import "time"

// Defaults, in one place. Everything that reads a spec reads it after SetDefaults.
const (
	DefaultKubernetesVersion   = "v1.34.2"
	DefaultNodeStartupTimeout  = 10 * time.Minute
	DefaultNodeNotReadyTimeout = 5 * time.Minute
	DefaultMaxUnhealthyPercent = 40
	DefaultMaxSurge            = 1
	DefaultMaxUnavailable      = 0
	DefaultDrainTimeout        = 10 * time.Minute
	DefaultClusterName         = "seed"
	DefaultBackupMaxAge        = 30 * time.Minute
	DefaultBackupRegion        = "us-east-1"
	// Scale-down of autoscaled pools (spec.autoscaling).
	DefaultScaleDownUnneededTime         = 5 * time.Minute
	DefaultScaleDownDelayAfterAdd        = 5 * time.Minute
	DefaultScaleDownUtilizationThreshold = 50
	// BackupStorageLocation is the one Velero BackupStorageLocation Seed
	// keeps.
	BackupStorageLocation = "default"
	// ControlPlanePool is the pool name machines of the control plane carry.
	ControlPlanePool = "control-plane"
)

// SetDefaults fills every optional field that has a default. It is idempotent
// and never overwrites what the user wrote, valid or not.
func SetDefaults(c *Cluster) {
	if c.APIVersion == "" {
		c.APIVersion = APIVersion
	}
	if c.Kind == "" {
		c.Kind = KindCluster
	}
	s := &c.Spec
	if s.KubernetesVersion == "" {
		s.KubernetesVersion = DefaultKubernetesVersion
	}
	for i := range s.NodePools {
		if s.NodePools[i].KubernetesVersion == "" {
			s.NodePools[i].KubernetesVersion = s.KubernetesVersion
		}
	}
	if s.Health.NodeStartupTimeout == nil {
		s.Health.NodeStartupTimeout = NewDuration(DefaultNodeStartupTimeout)
	}
	if s.Health.NodeNotReadyTimeout == nil {
		s.Health.NodeNotReadyTimeout = NewDuration(DefaultNodeNotReadyTimeout)
	}
	if s.Health.MaxUnhealthy == nil {
		s.Health.MaxUnhealthy = NewPercent(DefaultMaxUnhealthyPercent)
	}
	if s.Rollout.MaxSurge == nil {
		v := int32(DefaultMaxSurge)
		s.Rollout.MaxSurge = &v
	}
	if s.Rollout.MaxUnavailable == nil {
		v := int32(DefaultMaxUnavailable)
		s.Rollout.MaxUnavailable = &v
	}
	if s.Rollout.DrainTimeout == nil {
		s.Rollout.DrainTimeout = NewDuration(DefaultDrainTimeout)
	}
	if s.Backup.Enabled && s.Backup.BeforeUpgrade == nil {
		t := true
		s.Backup.BeforeUpgrade = &t
	}
	if s.Backup.Enabled && s.Backup.MaxAge == nil {
		s.Backup.MaxAge = NewDuration(DefaultBackupMaxAge)
	}
	if st := s.Backup.Store; st != nil && st.Region == "" {
		st.Region = DefaultBackupRegion
	}
	if s.AnyAutoscaled() {
		a := &s.Autoscaling
		if a.ScaleDownUnneededTime == nil {
			a.ScaleDownUnneededTime = NewDuration(DefaultScaleDownUnneededTime)
		}
		if a.ScaleDownDelayAfterAdd == nil {
			a.ScaleDownDelayAfterAdd = NewDuration(DefaultScaleDownDelayAfterAdd)
		}
		if a.ScaleDownUtilizationThreshold == nil {
			v := int32(DefaultScaleDownUtilizationThreshold)
			a.ScaleDownUtilizationThreshold = &v
		}
	}
}

// AnyAutoscaled reports whether some pool is autoscaled.
func (s *ClusterSpec) AnyAutoscaled() bool {
	for i := range s.NodePools {
		if s.NodePools[i].Autoscaled() {
			return true
		}
	}
	return false
}

// PoolVersion is the Kubernetes version machines of the pool should run.
func (c *Cluster) PoolVersion(p NodePool) string {
	if p.KubernetesVersion != "" {
		return p.KubernetesVersion
	}
	return c.Spec.KubernetesVersion
}
