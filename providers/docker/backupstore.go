package docker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/seedhq/seed/providers"
)

// The backup store: a versitygw container serving a host directory over
// S3. It carries no seed.dev/cluster label, so DestroyInfrastructure, which
// removes what carries one, leaves it; LabelBackupsOf ties it to its
// cluster instead.
const (
	// LabelBackupsOf names the cluster whose backups a store holds.
	LabelBackupsOf = "seed.dev/backups-of"
	// LabelBackupDir is the store's directory on the Docker host.
	LabelBackupDir = "seed.dev/backup-dir"

	componentBackupStore = "backup-store"
	// BackupBucket is the bucket the store serves backups from.
	BackupBucket = "seed-backups"
	// backupRegion is what versitygw signs for unless told otherwise.
	backupRegion = "us-east-1"
	backupPort   = "7070"

	envAccessKey = "ROOT_ACCESS_KEY"
	envSecretKey = "ROOT_SECRET_KEY"
)

// backupCredentials are the store's root keys, kept beside its data so a
// store made again for the same directory (a new cluster of the same name)
// serves the same backups under the same keys.
type backupCredentials struct {
	AccessKeyID     string `json:"accessKeyID"`
	SecretAccessKey string `json:"secretAccessKey"`
}

// backupStore is the container's create request: its own network, the
// data and IAM directories bound from the host, run as the host user who
// owns them.
func (p *provider) backupStore(creds backupCredentials) containerCreateRequest {
	return containerCreateRequest{
		Image: p.backupImage,
		User:  hostUser(),
		Cmd:   []string{"--port", ":" + backupPort, "--iam-dir", "/iam", "posix", "/data"},
		Env:   []string{envAccessKey + "=" + creds.AccessKeyID, envSecretKey + "=" + creds.SecretAccessKey},
		Labels: map[string]string{
			LabelBackupsOf: p.cluster,
			LabelComponent: componentBackupStore,
			LabelBackupDir: p.backupDir,
		},
		ExposedPorts: map[string]struct{}{backupPort + "/tcp": {}},
		HostConfig: hostConfig{
			NetworkMode: p.backupNetwork,
			Binds: []string{
				filepath.Join(p.backupDir, "data") + ":/data",
				filepath.Join(p.backupDir, "iam") + ":/iam",
			},
			// "unless-stopped": up again after a host restart, but a store
			// someone stopped stays stopped until EnsureBackupStore.
			RestartPolicy: &restartPolicy{Name: "unless-stopped"},
		},
	}
}

// hostUser is "uid:gid" of this process, which owns the store's directory.
func hostUser() string { return strconv.Itoa(os.Getuid()) + ":" + strconv.Itoa(os.Getgid()) }

// EnsureBackupStore implements providers.Provider: it creates the store
// (given a directory and an image; the agent's copy of the provider has
// neither and only starts and attaches the store the seed made), starts it
// if it is stopped, attaches it to the cluster's network, and reports it at
// its address there: pods cannot use Docker's DNS, and the address can
// change when the store restarts, so callers ask again rather than keep it.
func (p *provider) EnsureBackupStore(ctx context.Context) (providers.BackupStore, error) {
	op := "ensuring backup store " + p.backupName
	c, err := p.findContainer(ctx, p.backupName)
	switch {
	case providers.IsNotFound(err) && (p.backupDir == "" || p.backupImage == ""):
		return providers.BackupStore{}, providers.NewError(providers.KindNotFound, op,
			errors.New("the backup store does not exist: `seed up` creates it when spec.backup is enabled"))
	case providers.IsNotFound(err):
		if c, err = p.createBackupStore(ctx); err != nil {
			return providers.BackupStore{}, fmt.Errorf("%s: %w", op, err)
		}
	case err != nil:
		return providers.BackupStore{}, fmt.Errorf("%s: %w", op, err)
	}
	if err := p.ownedBackupStore(c); err != nil {
		return providers.BackupStore{}, providers.NewError(providers.KindInvalid, op, err)
	}
	if c.State != stateRunning && c.State != stateRestarting && p.backupDir == "" {
		// The agent reports a stopped store and leaves it: someone stopped
		// it (the restart policy brings it back after a host restart), and
		// the changes that need a backup wait, saying why, until it runs.
		return providers.BackupStore{}, providers.NewError(providers.KindTransient, op,
			fmt.Errorf("container %s is %s, so no backup can be written: `seed up` or `docker start %s` starts it again", c.Name, c.State, c.Name))
	}
	if c.State != stateRunning && c.State != stateRestarting {
		p.log.Info("Starting the backup store: it is not running", "container", c.Name, "state", c.State)
		if err := p.engine.ContainerStart(ctx, c.ID); err != nil {
			return providers.BackupStore{}, fmt.Errorf("%s: %w", op, err)
		}
	}
	if _, ok := c.IPs[p.network]; !ok {
		p.log.Info("Attaching the backup store to the cluster's network", "container", c.Name, "network", p.network)
		if err := p.engine.NetworkConnect(ctx, p.network, c.ID); err != nil && !isAttached(err) {
			return providers.BackupStore{}, fmt.Errorf("%s: %w", op, err)
		}
	}
	if c, err = p.engine.ContainerInspect(ctx, c.ID); err != nil {
		return providers.BackupStore{}, fmt.Errorf("%s: %w", op, err)
	}
	ip := c.IPs[p.network]
	if ip == "" {
		return providers.BackupStore{}, providers.NewError(providers.KindTransient, op,
			fmt.Errorf("container %s has no address on network %s yet", c.Name, p.network))
	}
	creds := credentialsFromEnv(c.Env)
	if creds.AccessKeyID == "" || creds.SecretAccessKey == "" {
		return providers.BackupStore{}, providers.NewError(providers.KindInvalid, op,
			fmt.Errorf("container %s has no %s and %s in its environment: remove it and run `seed up` again", c.Name, envAccessKey, envSecretKey))
	}
	return providers.BackupStore{
		Endpoint:        "http://" + net.JoinHostPort(ip, backupPort),
		Bucket:          BackupBucket,
		Region:          backupRegion,
		AccessKeyID:     creds.AccessKeyID,
		SecretAccessKey: creds.SecretAccessKey,
	}, nil
}

// createBackupStore makes the store's directory, keys, network and
// container. Racing callers end with one container: the engine's unique
// names decide, and both read the keys the first one wrote.
func (p *provider) createBackupStore(ctx context.Context) (container, error) {
	creds, err := p.ensureBackupDir()
	if err != nil {
		return container{}, providers.NewError(providers.KindInvalid, "preparing "+p.backupDir, err)
	}
	if err := p.ensureBackupNetwork(ctx); err != nil {
		return container{}, err
	}
	p.log.Info("Creating the backup store", "container", p.backupName, "image", p.backupImage, "dir", p.backupDir)
	_, err = p.engine.ContainerCreate(ctx, p.backupName, p.backupStore(creds))
	switch {
	case isConflict(err):
	case providers.IsNotFound(err):
		return container{}, providers.NewError(providers.KindInvalid, "creating "+p.backupName,
			fmt.Errorf("%w (build the store's image with hack/build-versitygw.sh)", err))
	case err != nil:
		return container{}, err
	}
	return p.awaitContainer(ctx, p.backupName)
}

// ensureBackupDir makes the store's directories, private to the host
// user (the backups hold every Secret of the cluster), the bucket, and the
// keys, generated once.
func (p *provider) ensureBackupDir() (backupCredentials, error) {
	for _, d := range []string{p.backupDir, filepath.Join(p.backupDir, "iam"), filepath.Join(p.backupDir, "data", BackupBucket)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return backupCredentials{}, err
		}
	}
	path := filepath.Join(p.backupDir, "credentials.json")
	raw, err := os.ReadFile(path)
	if err == nil {
		var c backupCredentials
		if err := json.Unmarshal(raw, &c); err != nil {
			return backupCredentials{}, fmt.Errorf("%s holds no keys: restore it, or remove the directory and its backups: %w", path, err)
		}
		if c.AccessKeyID == "" || c.SecretAccessKey == "" {
			return backupCredentials{}, fmt.Errorf("%s holds no keys: restore it, or remove the directory and its backups", path)
		}
		return c, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return backupCredentials{}, err
	}
	c := backupCredentials{AccessKeyID: "seed" + randomHex(8), SecretAccessKey: randomHex(24)}
	raw, _ = json.Marshal(c)
	// Written aside and linked into place: of two racing writers, the
	// first wins and the second reads its keys.
	tmp := path + ".tmp" + randomHex(4)
	if err := os.WriteFile(tmp, raw, 0o600); err != nil {
		return backupCredentials{}, err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil && !errors.Is(err, os.ErrExist) {
		return backupCredentials{}, err
	}
	return p.ensureBackupDir()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func credentialsFromEnv(env []string) backupCredentials {
	var c backupCredentials
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, envAccessKey+"="); ok {
			c.AccessKeyID = v
		}
		if v, ok := strings.CutPrefix(kv, envSecretKey+"="); ok {
			c.SecretAccessKey = v
		}
	}
	return c
}

// ensureBackupNetwork makes the store's own network, which outlives the
// cluster's.
func (p *provider) ensureBackupNetwork(ctx context.Context) error {
	found, err := p.engine.NetworkList(ctx, filters{"name": {p.backupNetwork}})
	if err != nil {
		return err
	}
	for _, n := range found {
		if n.Name == p.backupNetwork {
			return nil
		}
	}
	p.log.Info("Creating the backup store's network", "network", p.backupNetwork)
	_, err = p.engine.NetworkCreate(ctx, networkCreateRequest{
		Name: p.backupNetwork, CheckDuplicate: true, Driver: "bridge",
		Labels: map[string]string{LabelBackupsOf: p.cluster},
	})
	if err != nil && !isConflict(err) {
		return err
	}
	return nil
}

// ownedBackupStore says why c, found by the store's name, is not the
// cluster's backup store.
func (p *provider) ownedBackupStore(c container) error {
	if c.Labels[LabelBackupsOf] != p.cluster || c.Labels[LabelComponent] != componentBackupStore {
		return fmt.Errorf("container %s (%s) exists and is not the backup store of cluster %s: remove or rename it", c.Name, shortID(c.ID), p.cluster)
	}
	return nil
}

// isAttached: the engine refused to attach a container already attached
// (403 on engine 20.10, 409 on some others).
func isAttached(err error) bool {
	s := statusOf(err)
	return s == http.StatusForbidden || s == http.StatusConflict
}

// detachBackupStore takes the store off the cluster's network, which the
// engine cannot remove while it is attached. The store keeps running.
func (p *provider) detachBackupStore(ctx context.Context) error {
	c, err := p.findContainer(ctx, p.backupName)
	if providers.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, ok := c.IPs[p.network]; !ok || p.ownedBackupStore(c) != nil {
		return nil
	}
	p.log.Info("Detaching the backup store from the cluster's network: destroying the cluster; the store and its backups stay", "container", c.Name)
	if err := p.engine.NetworkDisconnect(ctx, p.network, c.ID); providers.IgnoreNotFound(err) != nil && !isAttached(err) {
		return err
	}
	return nil
}

// DeleteBackupStore implements providers.Provider: the container, its
// network and its directory, with every backup in it.
func (p *provider) DeleteBackupStore(ctx context.Context) error {
	op := "deleting backup store " + p.backupName
	dir := p.backupDir
	c, err := p.findContainer(ctx, p.backupName)
	switch {
	case err == nil:
		if err := p.ownedBackupStore(c); err != nil {
			return providers.NewError(providers.KindInvalid, op, err)
		}
		if d := c.Labels[LabelBackupDir]; d != "" {
			dir = d
		}
		p.log.Info("Removing the backup store", "container", c.Name)
		if err := p.engine.ContainerRemove(ctx, c.ID); providers.IgnoreNotFound(err) != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
	case !providers.IsNotFound(err):
		return fmt.Errorf("%s: %w", op, err)
	}
	nws, err := p.engine.NetworkList(ctx, filters{"name": {p.backupNetwork}})
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	for _, n := range nws {
		if n.Name == p.backupNetwork && n.Labels[LabelBackupsOf] == p.cluster {
			if err := p.engine.NetworkRemove(ctx, n.ID); providers.IgnoreNotFound(err) != nil {
				return fmt.Errorf("%s: %w", op, err)
			}
		}
	}
	if dir != "" {
		p.log.Info("Deleting the backups", "dir", dir)
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
	}
	return nil
}

// BackupStoreImage is the image the backup store runs, built by
// hack/build-versitygw.sh.
const BackupStoreImage = "versity/versitygw:v1.8.0"

// DefaultBackupDir is where the store of cluster keeps its backups on this
// host: under $XDG_DATA_HOME (~/.local/share), not under the build cache,
// which may be wiped, and not in any directory the cluster owns.
func DefaultBackupDir(cluster string) (string, error) {
	base := os.Getenv("XDG_DATA_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("finding a directory for backups: %w", err)
		}
		base = filepath.Join(home, ".local", "share")
	}
	return filepath.Join(base, "seed", "backups", cluster), nil
}
