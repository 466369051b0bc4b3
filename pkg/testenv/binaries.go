package testenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// The versions whose binaries are used when no directory is given: the
// Kubernetes release Seed targets and the etcd its kubeadm deploys.
const (
	DefaultKubeVersion = "v1.34.2"
	DefaultEtcdVersion = "v3.6.5"
)

// Environment variables that point at directories holding the binaries,
// overriding the build cache.
const (
	KubeBinDirEnv = "SEED_KUBE_BIN_DIR"
	EtcdBinDirEnv = "SEED_ETCD_BIN_DIR"
)

// binaries are the programs an Env runs.
type binaries struct {
	apiserver string
	etcd      string
}

// missingBinaryError says a binary is absent and how to build it.
type missingBinaryError struct {
	path  string
	build string
}

func (e *missingBinaryError) Error() string {
	return fmt.Sprintf("%s not found; build it with: %s", e.path, e.build)
}

// isMissingBinary reports whether err is, or wraps, a missingBinaryError.
func isMissingBinary(err error) bool {
	var missing *missingBinaryError
	return errors.As(err, &missing)
}

// findBinaries locates kube-apiserver and etcd, preferring the environment
// over the default versions' places in the build cache.
func findBinaries() (binaries, error) {
	cache, err := cacheDir()
	if err != nil {
		return binaries{}, err
	}
	kubeDir := dirFromEnv(KubeBinDirEnv, filepath.Join(cache, "kube", DefaultKubeVersion, "bin"))
	etcdDir := dirFromEnv(EtcdBinDirEnv, filepath.Join(cache, "etcd", DefaultEtcdVersion, "bin"))
	bins := binaries{
		apiserver: filepath.Join(kubeDir, "kube-apiserver"),
		etcd:      filepath.Join(etcdDir, "etcd"),
	}
	var errs []error
	if !isExecutable(bins.apiserver) {
		errs = append(errs, &missingBinaryError{path: bins.apiserver, build: buildCommand("build-kube.sh", DefaultKubeVersion, KubeBinDirEnv)})
	}
	if !isExecutable(bins.etcd) {
		errs = append(errs, &missingBinaryError{path: bins.etcd, build: buildCommand("build-etcd.sh", DefaultEtcdVersion, EtcdBinDirEnv)})
	}
	return bins, errors.Join(errs...)
}

func dirFromEnv(name, fallback string) string {
	if dir := os.Getenv(name); dir != "" {
		return dir
	}
	return fallback
}

// cacheDir mirrors seed::cache_dir in hack/lib.sh, which is where the build
// scripts put their output.
func cacheDir() (string, error) {
	if dir := os.Getenv("SEED_CACHE"); dir != "" {
		return dir, nil
	}
	if dir := os.Getenv("XDG_CACHE_HOME"); dir != "" {
		return filepath.Join(dir, "seed"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("finding the build cache: %w", err)
	}
	return filepath.Join(home, ".cache", "seed"), nil
}

func isExecutable(path string) bool {
	info, err := os.Stat(path)
	return err == nil && !info.IsDir() && info.Mode().Perm()&0o111 != 0
}

// buildCommand returns the command that builds a binary, with the script's
// absolute path when the repository is found above the working directory
// (go test runs in the package's directory), so it can be pasted anywhere.
// The scripts fill the build cache, so an override in envVar must go too.
func buildCommand(script, version, envVar string) string {
	if os.Getenv(envVar) != "" {
		return buildCommand(script, version, "") + " and unset " + envVar
	}
	rel := filepath.Join("hack", script)
	dir, err := os.Getwd()
	for err == nil {
		if candidate := filepath.Join(dir, rel); isExecutable(candidate) {
			return strings.TrimSpace(candidate + " " + version)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return strings.TrimSpace(rel+" "+version) + " (from the repository root)"
}
