package controller

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/seedhq/seed/pkg/api/v1alpha1"
)

// appliedSpecKey is where the status ConfigMap keeps the last valid spec, so
// an agent that restarts while the spec is broken still acts on a good one.
const appliedSpecKey = v1alpha1.AppliedSpecKey

// currentSpec returns the spec ConfigMap and the spec to act on: the
// ConfigMap's if it is valid, else the last good one (nil if there is none).
// A rejected version is reported once, as a Warning Event and in status.
func (r *Reconciler) currentSpec(ctx context.Context, now time.Time) (*corev1.ConfigMap, *v1alpha1.Cluster) {
	st := &r.status
	cm, err := r.configMaps.ConfigMaps(r.opts.Namespace).Get(v1alpha1.SpecConfigMap)
	if err != nil {
		st.SpecError = fmt.Sprintf("spec ConfigMap %s/%s not found: create it with the cluster spec under key %q",
			r.opts.Namespace, v1alpha1.SpecConfigMap, v1alpha1.SpecKey)
		st.SetCondition(v1alpha1.Condition{Type: v1alpha1.ConditionSpecValid, Status: "False", Reason: "SpecMissing", Message: st.SpecError}, now)
		return nil, r.lastGood
	}
	st.ObservedSpecVersion = cm.ResourceVersion
	if cm.ResourceVersion == r.lastGoodVersion && r.lastGood != nil {
		return cm, r.lastGood
	}
	raw, ok := cm.Data[v1alpha1.SpecKey]
	var spec *v1alpha1.Cluster
	if !ok {
		err = fmt.Errorf("the ConfigMap has no key %q: put the cluster spec under it", v1alpha1.SpecKey)
	} else {
		spec, err = v1alpha1.Load([]byte(raw), v1alpha1.ValidateOptions{RunningVersion: r.runningVersion, Previous: r.lastGood})
	}
	if err != nil {
		st.SpecError = err.Error()
		st.SetCondition(v1alpha1.Condition{Type: v1alpha1.ConditionSpecValid, Status: "False", Reason: "InvalidSpec",
			Message: "the spec is invalid; the agent keeps acting on the last valid spec and takes no action based on this one"}, now)
		if cm.ResourceVersion != r.lastRejected {
			r.lastRejected = cm.ResourceVersion
			if r.opts.Metrics != nil {
				r.opts.Metrics.specErrors.Inc()
			}
			r.opts.Logger.Info("Rejected spec; keeping the last valid one", "resourceVersion", cm.ResourceVersion, "error", err.Error())
			r.event(cm, corev1.EventTypeWarning, "InvalidSpec", "Spec rejected, keeping the last valid spec: %v", err)
		}
		return cm, r.lastGood
	}
	if r.lastGood != nil && r.lastGoodVersion != "" {
		r.opts.Logger.Info("Accepted new spec", "resourceVersion", cm.ResourceVersion)
	}
	r.lastGood, r.lastGoodVersion = spec, cm.ResourceVersion
	st.SpecError = ""
	st.AppliedSpecVersion = cm.ResourceVersion
	st.SetCondition(v1alpha1.Condition{Type: v1alpha1.ConditionSpecValid, Status: "True", Reason: "Valid"}, now)
	return cm, spec
}

// restoreLastGood reads the last valid spec from the status ConfigMap.
func (r *Reconciler) restoreLastGood(ctx context.Context) {
	cm, err := r.opts.Client.CoreV1().ConfigMaps(r.opts.Namespace).Get(ctx, v1alpha1.StatusConfigMap, metav1.GetOptions{})
	if err != nil {
		if !apierrors.IsNotFound(err) {
			r.opts.Logger.Error(err, "Reading status to restore the last valid spec")
		}
		return
	}
	raw, ok := cm.Data[appliedSpecKey]
	if !ok {
		return
	}
	spec, err := v1alpha1.Load([]byte(raw), v1alpha1.ValidateOptions{})
	if err != nil {
		r.opts.Logger.Error(err, "Ignoring the stored last valid spec")
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.lastGood == nil {
		r.lastGood = spec
		r.lastGoodVersion = cm.Data[appliedVersionKey]
	}
}
