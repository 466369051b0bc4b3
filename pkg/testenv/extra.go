package testenv

import (
	"path/filepath"
	"syscall"
	"testing"
)

// Process is a program run next to an Env's etcd and apiserver (a
// scheduler, kwok, the agent binary), its output in a log file in the
// Env's directory. The Env kills it when it stops, before the apiserver.
type Process struct {
	p *process
}

// StartProcess runs path with args as a child of the test, logging to
// NAME.log in the Env's directory.
func (e *Env) StartProcess(name, path string, args ...string) (*Process, error) {
	p, err := startProcess(name, e.dir, path, args...)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.extra = append(e.extra, p)
	e.mu.Unlock()
	return &Process{p: p}, nil
}

// Dir is the Env's own directory, removed when it stops.
func (e *Env) Dir() string { return e.dir }

// Pid is the process's ID.
func (p *Process) Pid() int { return p.p.cmd.Process.Pid }

// Kill sends SIGKILL, as a crash or an OOM kill would, and waits for the
// process to end.
func (p *Process) Kill() { p.p.stop() }

// Pause stops the process (SIGSTOP) until Resume, as a process starved of
// CPU would stand still.
func (p *Process) Pause() error { return p.p.cmd.Process.Signal(syscall.SIGSTOP) }

// Resume continues a paused process (SIGCONT).
func (p *Process) Resume() error { return p.p.cmd.Process.Signal(syscall.SIGCONT) }

// Check returns an error, with the end of the log, once the process has
// ended.
func (p *Process) Check() error { return p.p.check() }

// LogTail returns the last n lines of the process's output.
func (p *Process) LogTail(n int) string { return p.p.logTail(n) }

// FreePorts returns n distinct loopback ports free right now.
func FreePorts(n int) ([]int, error) { return freePorts(n) }

// KubeBinary returns the path of a Kubernetes component (kube-scheduler,
// kube-controller-manager) from the same build as the apiserver, or an
// error saying how to build it that RequireBinaries turns into a skip or
// a failure.
func KubeBinary(name string) (string, error) {
	cache, err := cacheDir()
	if err != nil {
		return "", err
	}
	path := filepath.Join(dirFromEnv(KubeBinDirEnv, filepath.Join(cache, "kube", DefaultKubeVersion, "bin")), name)
	if !isExecutable(path) {
		return "", &missingBinaryError{path: path, build: buildCommand("build-kube.sh", DefaultKubeVersion, KubeBinDirEnv)}
	}
	return path, nil
}

// CachedBinary returns the path of name in dir, dir defaulting to
// subdir of Seed's build cache, or an error naming the script that builds
// it when it is not there.
func CachedBinary(dir, subdir, name, script, envVar string) (string, error) {
	cache, err := cacheDir()
	if err != nil {
		return "", err
	}
	if dir == "" {
		dir = filepath.Join(cache, subdir)
	}
	path := filepath.Join(dir, name)
	if !isExecutable(path) {
		return "", &missingBinaryError{path: path, build: buildCommand(script, "", envVar)}
	}
	return path, nil
}

// RequireBinaries skips t when err says a binary is missing and CI is not
// "true", and fails it otherwise: in CI nothing is skipped.
func RequireBinaries(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		handleStartError(t, err)
	}
}
