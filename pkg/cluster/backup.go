package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/seedhq/seed/manifests"
	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/pkg/velero"
)

// AnnotationRestoredFrom, on the spec ConfigMap, names the backup that
// `seed up --restore-from` restored (or is restoring) into the cluster. It
// is written before the restore is asked for, so that a second run, or one
// after a crash, follows that restore instead of starting another.
const AnnotationRestoredFrom = "seed.dev/restored-from"

// LabelTakenBy, set to "seed" on the Backups and Restores the seed asks
// for, tells them from the agent's and a Schedule's.
const LabelTakenBy = velero.LabelTakenBy

// LatestBackup, given as the backup to restore, means the good backup
// that completed last.
const LatestBackup = "latest"

// ManualBackupName is the name `seed backup` gives a backup of cluster
// taken at now.
func ManualBackupName(cluster string, now time.Time) string {
	return cluster + "-manual-" + now.UTC().Format("20060102-150405")
}

// LifeboatRestoreName is the Restore `seed up --restore-from` makes of
// backup: one name per backup, so no backup is restored twice by it.
func LifeboatRestoreName(backup string) string { return backup + "-lifeboat" }

var configMapGVR = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}

// Backups takes Velero backups of one cluster and restores them, through
// the Velero the agent installs while spec.backup.enabled.
type Backups struct {
	Dynamic dynamic.Interface
	// Progress receives one line per step and one per change seen.
	Progress io.Writer
	// Now and Poll are the clock and how often Velero's objects are read
	// (default time.Now and one second).
	Now  func() time.Time
	Poll time.Duration
}

// NewBackups returns Backups for the cluster cfg points at.
func NewBackups(cfg *rest.Config, progress io.Writer) (*Backups, error) {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating dynamic client: %w", err)
	}
	return &Backups{Dynamic: dyn, Progress: progress}, nil
}

// BackupResult is a backup taken and judged good.
type BackupResult struct {
	Name    string
	Verdict velero.Verdict
	// Items is how many objects it holds.
	Items    int64
	Duration time.Duration
}

// RestoreResult is a restore that completed.
type RestoreResult struct {
	Name, Backup string
	Verdict      velero.Verdict
	// Items is how many objects Velero counted for the restore (those that
	// existed already count, and are left as they were).
	Items, Warnings int64
	Duration        time.Duration
	// Earlier: the cluster held this restore already; nothing was asked.
	Earlier bool
}

// notInstalledError says that the cluster has no Velero to ask.
type notInstalledError struct{ err error }

func (e *notInstalledError) Error() string {
	return fmt.Sprintf("Velero is not installed in the cluster (no BackupStorageLocation %s/%s): "+
		"backups need spec.backup.enabled: true in the spec (kubectl -n %s edit configmap %s), "+
		"then the agent installs Velero (seed status shows when it is ready)",
		manifests.DefaultVeleroNamespace, manifests.VeleroLocation, v1alpha1.DefaultNamespace, v1alpha1.SpecConfigMap)
}

func (e *notInstalledError) Unwrap() error { return e.err }

// IsVeleroNotInstalled reports whether err says the cluster has no Velero.
func IsVeleroNotInstalled(err error) bool {
	var e *notInstalledError
	return errors.As(err, &e)
}

// location is what the seed reads of the BackupStorageLocation.
type location struct {
	phase, message string
	synced         bool
}

func (b *Backups) location(ctx context.Context) (location, error) {
	u, err := b.Dynamic.Resource(velero.LocationGVR).Namespace(manifests.DefaultVeleroNamespace).
		Get(ctx, manifests.VeleroLocation, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		// The CRD missing and the object missing both read as not found.
		return location{}, &notInstalledError{err}
	}
	if err != nil {
		return location{}, fmt.Errorf("reading BackupStorageLocation %s/%s: %w", manifests.DefaultVeleroNamespace, manifests.VeleroLocation, err)
	}
	var l location
	l.phase, _, _ = unstructured.NestedString(u.Object, "status", "phase")
	l.message, _, _ = unstructured.NestedString(u.Object, "status", "message")
	synced, _, _ := unstructured.NestedString(u.Object, "status", "lastSyncedTime")
	l.synced = synced != ""
	return l, nil
}

func (l location) describe() string {
	phase := l.phase
	if phase == "" {
		phase = "not yet validated"
	}
	msg := fmt.Sprintf("backup storage location %s/%s is %s", manifests.DefaultVeleroNamespace, manifests.VeleroLocation, phase)
	if l.message != "" {
		msg += ": " + l.message
	}
	return msg
}

// availableLocation waits while Velero has not yet validated the store
// and fails at once when it found it Unavailable, or when Velero is not
// installed (unless waitInstall, for a cluster whose agent is installing
// it).
func (b *Backups) availableLocation(ctx context.Context, s *step, waitInstall bool) (location, error) {
	last := ""
	var l location
	err := b.poll(ctx, func() (bool, error) {
		var err error
		l, err = b.location(ctx)
		msg := ""
		switch {
		case IsVeleroNotInstalled(err) && waitInstall:
			msg = "Velero is not installed yet (the agent installs it)"
		case err != nil:
			return false, err
		case l.phase == "Available":
			return true, nil
		case l.phase == "":
			msg = l.describe()
		default:
			return false, fmt.Errorf("%s: Velero can neither write nor read backups there", l.describe())
		}
		if msg != last {
			s.detail(msg)
			last = msg
		}
		return false, nil
	})
	if err != nil && ctx.Err() != nil && last != "" {
		return l, fmt.Errorf("%w: %s", err, last)
	}
	return l, err
}

// Take backs up every namespace of the cluster as backup name, waits for
// Velero to finish, and judges the backup as the agent's gate would: a
// backup that is not Completed, with every item and no errors, is an
// error. A backup of that name that exists already is followed, not
// taken again.
func (b *Backups) Take(ctx context.Context, name string) (BackupResult, error) {
	b = b.defaulted()
	p := newProgress(b.Progress)
	s := p.start("Checking Velero's backup storage location")
	if _, err := b.availableLocation(ctx, s, false); err != nil {
		return BackupResult{}, s.fail(err)
	}
	s.done()

	s = p.start("Backing up every namespace as backup %s", name)
	start := b.Now()
	maxAge := func() time.Duration { return b.Now().Sub(start) + time.Minute }
	ri := b.Dynamic.Resource(velero.BackupGVR).Namespace(manifests.DefaultVeleroNamespace)
	obj := velero.NewBackup(manifests.DefaultVeleroNamespace, name, manifests.VeleroLocation, map[string]string{LabelTakenBy: "seed"})
	if _, err := ri.Create(ctx, obj, metav1.CreateOptions{FieldManager: "seed"}); apierrors.IsAlreadyExists(err) {
		s.detail(fmt.Sprintf("backup %s exists already: following it", name))
		maxAge = func() time.Duration { return velero.NoMaxAge }
	} else if err != nil {
		return BackupResult{}, s.fail(fmt.Errorf("creating backup %s: %w", name, err))
	}
	var v velero.Verdict
	var o velero.Observed
	last := ""
	err := b.poll(ctx, func() (bool, error) {
		u, err := ri.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			u, err = nil, nil
		}
		if err != nil {
			return false, fmt.Errorf("reading backup %s: %w", name, err)
		}
		l, err := b.location(ctx)
		if err != nil {
			return false, err
		}
		o = velero.ObservedFrom(name, u, l.phase, l.message)
		v = velero.Judge(o, b.Now(), maxAge())
		if line := backupLine(o); line != last && !v.Good && !v.Final {
			s.detail(line)
			last = line
		}
		return v.Good || v.Final, nil
	})
	if err != nil {
		return BackupResult{}, s.fail(fmt.Errorf("waiting for backup %s: %w (last: %s)", name, err, v.Message))
	}
	if !v.Good {
		return BackupResult{}, s.fail(errors.New(v.Message))
	}
	s.doneWith("%s", v.Message)
	res := BackupResult{Name: name, Verdict: v, Duration: b.Now().Sub(start)}
	if o.TotalItems != nil {
		res.Items = *o.TotalItems
	}
	return res, nil
}

// backupLine is a backup's progress as the user follows it.
func backupLine(o velero.Observed) string {
	if !o.Found {
		return "waiting for Velero to see the backup"
	}
	phase := o.Phase
	if phase == "" {
		phase = "New"
	}
	if o.TotalItems != nil && o.ItemsBackedUp != nil {
		return fmt.Sprintf("%s: %d of %d items backed up", phase, *o.ItemsBackedUp, *o.TotalItems)
	}
	return phase
}

// Restore restores backup from (LatestBackup, or "", for the good backup
// that completed last, however old) as restore name (default
// <backup>-<time>). Objects that exist are left as they are; the agent's
// own state is never in a backup, nor is Velero's namespace restored.
func (b *Backups) Restore(ctx context.Context, from, name string) (RestoreResult, error) {
	b = b.defaulted()
	p := newProgress(b.Progress)
	s := p.start("Checking Velero's backup storage location")
	if _, err := b.availableLocation(ctx, s, false); err != nil {
		return RestoreResult{}, s.fail(err)
	}
	s.done()
	backup, err := b.resolve(ctx, from)
	if err != nil {
		return RestoreResult{}, err
	}
	if name == "" {
		name = backup + "-" + b.Now().UTC().Format("20060102-150405")
	}
	return b.runRestore(ctx, p, name, backup, true)
}

// resolve names the backup to restore, which must be good: Completed,
// with every item and no errors. Its age does not matter.
func (b *Backups) resolve(ctx context.Context, from string) (string, error) {
	l, err := b.location(ctx)
	if err != nil {
		return "", err
	}
	list, err := b.Dynamic.Resource(velero.BackupGVR).Namespace(manifests.DefaultVeleroNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", fmt.Errorf("listing backups: %w", err)
	}
	now := b.Now()
	var all []velero.Observed
	for i := range list.Items {
		all = append(all, velero.ObservedFrom(list.Items[i].GetName(), &list.Items[i], l.phase, l.message))
	}
	if from == "" || from == LatestBackup {
		latest, ok := velero.Latest(all, now)
		if !ok {
			return "", fmt.Errorf("no good backup to restore: %s", describeBackups(all, now))
		}
		return latest.Name, nil
	}
	i := slices.IndexFunc(all, func(o velero.Observed) bool { return o.Name == from })
	if i < 0 {
		return "", fmt.Errorf("no backup named %s: %s", from, describeBackups(all, now))
	}
	if v := velero.Judge(all[i], now, velero.NoMaxAge); !v.Good {
		return "", fmt.Errorf("not restoring backup %s, which is not good: %s", from, v.Message)
	}
	return from, nil
}

// describeBackups lists the backups Velero knows with the verdict on each.
func describeBackups(all []velero.Observed, now time.Time) string {
	if len(all) == 0 {
		return "Velero knows no backups (a new cluster knows those in the store once Velero has read it)"
	}
	lines := make([]string, 0, len(all))
	for _, o := range all {
		lines = append(lines, velero.Judge(o, now, velero.NoMaxAge).Message)
	}
	slices.Sort(lines)
	return "Velero knows these:\n  " + strings.Join(lines, "\n  ")
}

// runRestore asks for restore name of backup, unless it is only to
// follow one that exists (as it does when the name is taken), and waits
// for its verdict.
func (b *Backups) runRestore(ctx context.Context, p *progress, name, backup string, create bool) (RestoreResult, error) {
	s := p.start("Restoring backup %s as restore %s", backup, name)
	start := b.Now()
	ri := b.Dynamic.Resource(velero.RestoreGVR).Namespace(manifests.DefaultVeleroNamespace)
	if create {
		obj := velero.NewRestore(manifests.DefaultVeleroNamespace, name, backup, manifests.DefaultVeleroNamespace, map[string]string{LabelTakenBy: "seed"})
		if _, err := ri.Create(ctx, obj, metav1.CreateOptions{FieldManager: "seed"}); apierrors.IsAlreadyExists(err) {
			s.detail(fmt.Sprintf("restore %s exists already: following it", name))
		} else if err != nil {
			return RestoreResult{}, s.fail(fmt.Errorf("creating restore %s: %w", name, err))
		}
	}
	var o velero.RestoreObserved
	var v velero.Verdict
	last := ""
	err := b.poll(ctx, func() (bool, error) {
		u, err := ri.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			u, err = nil, nil
		}
		if err != nil {
			return false, fmt.Errorf("reading restore %s: %w", name, err)
		}
		o = velero.RestoreObservedFrom(name, u)
		v = velero.JudgeRestore(o)
		if !v.Good && !v.Final && v.Message != last {
			s.detail(v.Message)
			last = v.Message
		}
		return v.Good || v.Final, nil
	})
	if err != nil {
		return RestoreResult{}, s.fail(fmt.Errorf("waiting for restore %s: %w (last: %s)", name, err, v.Message))
	}
	if !v.Good {
		return RestoreResult{}, s.fail(fmt.Errorf("%s; Velero's log of it: velero -n %s restore logs %s, or the store's %s/restores/%s/",
			v.Message, manifests.DefaultVeleroNamespace, name, manifests.VeleroPrefix, name))
	}
	s.doneWith("%s", v.Message)
	res := RestoreResult{Name: name, Backup: backup, Verdict: v, Warnings: o.Warnings, Duration: b.Now().Sub(start)}
	if o.TotalItems != nil {
		res.Items = *o.TotalItems
	}
	return res, nil
}

// Lifeboat restores backup from (a name, or LatestBackup) into a cluster
// just brought up on an old store: it waits for the agent to install
// Velero and for Velero to read the store's backups, then restores. The
// backup it restores is recorded on the spec ConfigMap first, so that it
// runs once per cluster: a second call follows that restore and asks for
// no other.
func (b *Backups) Lifeboat(ctx context.Context, from string) (RestoreResult, error) {
	b = b.defaulted()
	p := newProgress(b.Progress)
	s := p.start("Waiting for Velero and its backup storage location")
	if _, err := b.availableLocation(ctx, s, true); err != nil {
		return RestoreResult{}, s.fail(err)
	}
	s.done()

	specs := b.Dynamic.Resource(configMapGVR).Namespace(v1alpha1.DefaultNamespace)
	spec, err := specs.Get(ctx, v1alpha1.SpecConfigMap, metav1.GetOptions{})
	if err != nil {
		return RestoreResult{}, fmt.Errorf("reading the spec ConfigMap: %w", err)
	}
	if done := spec.GetAnnotations()[AnnotationRestoredFrom]; done != "" {
		if from != LatestBackup && from != done {
			return RestoreResult{}, fmt.Errorf("the cluster was restored from backup %s already (annotation %s on ConfigMap %s/%s): not restoring %s on top; `seed restore --from %s` does, if that is what you want",
				done, AnnotationRestoredFrom, v1alpha1.DefaultNamespace, v1alpha1.SpecConfigMap, from, from)
		}
		return b.followLifeboat(ctx, p, done)
	}

	s = p.start("Waiting for Velero to read the backups in the store")
	last := ""
	err = b.poll(ctx, func() (bool, error) {
		l, err := b.location(ctx)
		if err != nil {
			return false, err
		}
		if !l.synced {
			if msg := "Velero has not read the store yet"; msg != last {
				s.detail(msg)
				last = msg
			}
		}
		return l.synced, nil
	})
	if err != nil {
		return RestoreResult{}, s.fail(fmt.Errorf("waiting for Velero to read the store: %w", err))
	}
	s.done()
	backup, err := b.resolve(ctx, from)
	if err != nil {
		return RestoreResult{}, err
	}
	ann := spec.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[AnnotationRestoredFrom] = backup
	spec.SetAnnotations(ann)
	// With the resourceVersion read: a conflict means someone else wrote
	// it meanwhile, maybe another seed up restoring.
	if _, err := specs.Update(ctx, spec, metav1.UpdateOptions{FieldManager: "seed"}); err != nil {
		return RestoreResult{}, fmt.Errorf("recording the restore of backup %s on the spec ConfigMap: %w", backup, err)
	}
	return b.runRestore(ctx, p, LifeboatRestoreName(backup), backup, true)
}

// followLifeboat is Lifeboat once the backup is recorded: the restore is
// followed if it exists, asked for if it does not (the seed stopped
// between recording it and asking), and left alone if its backup is gone
// (Velero deletes a backup's restores with it when it expires).
func (b *Backups) followLifeboat(ctx context.Context, p *progress, backup string) (RestoreResult, error) {
	name := LifeboatRestoreName(backup)
	_, err := b.Dynamic.Resource(velero.RestoreGVR).Namespace(manifests.DefaultVeleroNamespace).Get(ctx, name, metav1.GetOptions{})
	switch {
	case err == nil:
		p.note("The cluster holds restore %s of backup %s already", name, backup)
		res, err := b.runRestore(ctx, p, name, backup, false)
		res.Earlier = true
		return res, err
	case !apierrors.IsNotFound(err):
		return RestoreResult{}, fmt.Errorf("reading restore %s: %w", name, err)
	}
	_, err = b.Dynamic.Resource(velero.BackupGVR).Namespace(manifests.DefaultVeleroNamespace).Get(ctx, backup, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		p.note("The cluster was restored from backup %s, which has since expired; nothing to do", backup)
		return RestoreResult{Name: name, Backup: backup, Earlier: true}, nil
	}
	if err != nil {
		return RestoreResult{}, fmt.Errorf("reading backup %s: %w", backup, err)
	}
	return b.runRestore(ctx, p, name, backup, true)
}

func (b *Backups) defaulted() *Backups {
	c := *b
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Poll == 0 {
		c.Poll = time.Second
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	return &c
}

// poll calls f every b.Poll until it is done, fails, or ctx ends.
func (b *Backups) poll(ctx context.Context, f func() (bool, error)) error {
	t := time.NewTicker(b.Poll)
	defer t.Stop()
	for {
		done, err := f()
		if err != nil || done {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
