package testenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// tempDirPrefix starts the name of every Env's directory; the creating
// process's ID follows, so that later runs can tell leftovers from live ones.
const tempDirPrefix = "seed-testenv-"

// newTempDir makes a directory for one Env, first removing those left by
// test binaries that died without cleaning up (a panic or a timeout skips
// Stop), since each holds a hundred-odd MB of preallocated etcd log.
func newTempDir() (string, error) {
	removeStaleTempDirs()
	dir, err := os.MkdirTemp("", tempDirPrefix+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return "", fmt.Errorf("creating a temporary directory: %w", err)
	}
	return dir, nil
}

// removeStaleTempDirs is best effort: a directory it cannot judge or
// remove is left alone.
func removeStaleTempDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), tempDirPrefix+"*"))
	for _, dir := range dirs {
		pidText, _, ok := strings.Cut(strings.TrimPrefix(filepath.Base(dir), tempDirPrefix), "-")
		if !ok {
			continue
		}
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid <= 0 {
			continue
		}
		// Signal 0 checks for existence without sending anything.
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			_ = os.RemoveAll(dir)
		}
	}
}
