package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/seedhq/seed/agent/backup"
	"github.com/seedhq/seed/manifests"
	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/providers"
)

// ensureBackups installs Velero and keeps it pointed at the store while
// spec.backup.enabled, and reports what it found. The store's address is
// asked for on every pass: the provider's store may come back at another
// address after a restart. Turning backups off leaves Velero and its
// backups as they are: removing them is the user's choice, not the agent's.
func (r *Reconciler) ensureBackups(ctx context.Context, ps *pass) {
	b := ps.spec.Spec.Backup
	if !b.Enabled {
		r.status.Backup = nil
		r.status.RemoveCondition(v1alpha1.ConditionBackupLocationAvailable)
		return
	}
	st := &v1alpha1.BackupStatus{}
	r.status.Backup = st
	unavailable := func(reason, msg string) {
		ps.location.message = msg
		r.status.SetCondition(v1alpha1.Condition{Type: v1alpha1.ConditionBackupLocationAvailable, Status: "False",
			Reason: reason, Message: msg}, ps.now)
	}
	if r.opts.Dynamic == nil {
		err := errors.New("backups are enabled but the agent has no dynamic client to reach Velero's resources")
		unavailable("VeleroNotInstalled", err.Error())
		ps.errs = append(ps.errs, err)
		return
	}
	store, err := r.backupStore(ctx, b)
	if err != nil {
		unavailable("StoreUnknown", err.Error())
		ps.errs = append(ps.errs, err)
		return
	}
	st.Store = store.URL
	ps.store = &store
	inst := backup.Installer{Dynamic: r.opts.Dynamic, Core: r.opts.Client}
	h, err := r.veleroHealth(ctx, &inst, store, ps.now)
	if err != nil {
		err = fmt.Errorf("installing Velero: %w", err)
		unavailable("VeleroNotInstalled", err.Error())
		ps.errs = append(ps.errs, err)
		return
	}
	st.Installed, st.Waiting = h.Installed, h.Waiting
	st.LocationPhase, st.LocationMessage = h.LocationPhase, h.LocationMessage
	ps.location.phase = h.LocationPhase
	if !h.LocationValidated.IsZero() {
		t := h.LocationValidated
		st.LocationValidatedAt = &t
	}
	switch {
	case !h.Installed:
		unavailable("VeleroInstalling", "waiting for "+h.Waiting)
		ps.moved = true // the CRDs are Established within moments
	case h.LocationPhase == "Available":
		r.status.SetCondition(v1alpha1.Condition{Type: v1alpha1.ConditionBackupLocationAvailable, Status: "True",
			Reason: "Available", Message: "Velero can write to " + store.URL}, ps.now)
		delete(r.lastBlocked, "backup/location")
	case h.LocationPhase == "":
		unavailable("NotYetValidated", "Velero has not yet checked the store at "+store.URL)
	default:
		msg := fmt.Sprintf("Velero finds the store at %s %s", store.URL, h.LocationPhase)
		if h.LocationMessage != "" {
			msg += ": " + h.LocationMessage
		}
		unavailable(backup.ReasonLocationUnavailable, msg)
		r.blocked(ps.specCM, "backup/location", backup.ReasonLocationUnavailable, msg)
	}
}

// veleroReapply is how often the whole install is applied again while
// nothing about it changed, to put back hand edits: every pass would cost
// some twenty requests, with CRDs of hundreds of kilobytes.
const veleroReapply = 5 * time.Minute

// veleroHealth applies Velero's install when it is not known to be in
// place for this store, or was last applied veleroReapply ago; otherwise
// it only reads the location, one request.
func (r *Reconciler) veleroHealth(ctx context.Context, inst *backup.Installer, store backup.Store, now time.Time) (backup.Health, error) {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%s\x00%s", store.URL, store.Bucket, store.Region, store.Credentials))
	key := hex.EncodeToString(sum[:])
	if r.veleroApplied.key == key && now.Sub(r.veleroApplied.at) < veleroReapply {
		h, err := inst.Location(ctx)
		if err == nil {
			return h, nil
		}
		// Gone or unreadable: apply it all again.
	}
	r.veleroApplied.key = ""
	h, err := inst.Ensure(ctx, store)
	if err == nil && h.Installed {
		r.veleroApplied.key, r.veleroApplied.at = key, now
	}
	return h, err
}

// backupStore is where Velero writes: the store the spec names, with the
// keys from the user's Secret, or else the provider's own.
func (r *Reconciler) backupStore(ctx context.Context, b v1alpha1.BackupSpec) (backup.Store, error) {
	if s := b.Store; s != nil {
		sec, err := r.opts.Client.CoreV1().Secrets(r.opts.Namespace).Get(ctx, s.CredentialsSecret, metav1.GetOptions{})
		if err != nil {
			return backup.Store{}, fmt.Errorf("reading spec.backup.store.credentialsSecret %s/%s: %w", r.opts.Namespace, s.CredentialsSecret, err)
		}
		creds := sec.Data["cloud"]
		if len(creds) == 0 {
			return backup.Store{}, fmt.Errorf("spec.backup.store.credentialsSecret %s/%s has no key \"cloud\" (an AWS shared-credentials file)",
				r.opts.Namespace, s.CredentialsSecret)
		}
		return backup.Store{URL: s.Endpoint, Bucket: s.Bucket, Region: s.Region, Credentials: creds}, nil
	}
	s, err := r.provider.EnsureBackupStore(ctx)
	if err != nil {
		return backup.Store{}, fmt.Errorf("finding the provider's backup store: %w", err)
	}
	return backup.Store{URL: s.Endpoint, Bucket: s.Bucket, Region: s.Region,
		Credentials: backup.SharedCredentials(s.AccessKeyID, s.SecretAccessKey)}, nil
}

// imagesFor adds to a new machine's images those only some machines need:
// Velero's, for control-plane machines (where its Deployment runs) while
// backups are enabled.
func imagesFor(images []string, c *v1alpha1.Cluster, role providers.Role) []string {
	if c.Spec.Backup.Enabled && role == providers.RoleControlPlane {
		return append(slices.Clone(images), manifests.VeleroImages()...)
	}
	return images
}
