package controller

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/seedhq/seed/pkg/velero"
)

// LeaderOptions configure leader election on a Lease.
type LeaderOptions struct {
	Client    kubernetes.Interface
	Namespace string
	Lease     string
	Identity  string
	// Durations default to 15s / 10s / 2s, client-go's usual values.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	Logger                                    logr.Logger
}

// RunAsLeader blocks until ctx ends or leadership is lost, running run while
// this replica holds the Lease. run's context ends the moment leadership is
// lost, so a deposed agent stops acting; the caller should then exit and be
// restarted rather than try to lead again with stale state.
func RunAsLeader(ctx context.Context, o LeaderOptions, run func(ctx context.Context)) error {
	if o.LeaseDuration == 0 {
		o.LeaseDuration = 15 * time.Second
	}
	if o.RenewDeadline == 0 {
		o.RenewDeadline = 10 * time.Second
	}
	if o.RetryPeriod == 0 {
		o.RetryPeriod = 2 * time.Second
	}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: o.Namespace, Name: o.Lease},
		Client:     o.Client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: o.Identity},
		// Out of backups: a restored Lease would name a leader that is gone.
		Labels: velero.ExcludeLabels(),
	}
	// The callback runs on the elector's goroutine.
	var led atomic.Bool
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   o.LeaseDuration,
		RenewDeadline:   o.RenewDeadline,
		RetryPeriod:     o.RetryPeriod,
		ReleaseOnCancel: true,
		Name:            o.Lease,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				led.Store(true)
				o.Logger.Info("Became leader", "identity", o.Identity, "lease", o.Namespace+"/"+o.Lease)
				run(ctx)
			},
			OnStoppedLeading: func() {
				o.Logger.Info("Stopped leading", "identity", o.Identity)
			},
			OnNewLeader: func(id string) {
				if id != o.Identity {
					o.Logger.Info("Another replica leads; standing by", "leader", id)
				}
			},
		},
	})
	if err != nil {
		return fmt.Errorf("configuring leader election: %w", err)
	}
	elector.Run(ctx)
	if ctx.Err() == nil && led.Load() {
		return fmt.Errorf("lost leadership of lease %s/%s", o.Namespace, o.Lease)
	}
	return nil
}
