package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// process is one child program with its output captured to a log file.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	// exited is closed once the process has been waited for; err is then
	// its exit status.
	exited chan struct{}
	err    error
}

// startProcess runs path with args, its output going to dir/name.log.
func startProcess(name, dir, path string, args ...string) (*process, error) {
	logPath := filepath.Join(dir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("creating %s's log: %w", name, err)
	}
	// The child holds its own copy of the descriptor.
	defer logFile.Close()

	cmd := exec.Command(path, args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// errExited says a process ended before it was asked to.
var errExited = errors.New("exited early")

// check returns an error if the process has already ended, with the tail of
// its log, which is nearly always what explains why.
func (p *process) check() error {
	select {
	case <-p.exited:
		return fmt.Errorf("%s %w (%w); last lines of %s:\n%s", p.name, errExited, p.err, p.logPath, p.logTail(20))
	default:
		return nil
	}
}

// stop kills the process and waits for it. Its data is thrown away with
// the temporary directory, so there is nothing a graceful shutdown would
// save, and skipping it keeps test teardown short.
func (p *process) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
}

func (p *process) logTail(n int) string {
	data, err := os.ReadFile(p.logPath)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(string(bytes.TrimRight(data, "\n")), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// freePorts asks the kernel for n distinct free loopback ports. Another
// process may take one before the child binds it; Start retries for that.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	listeners := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}()
	// All are held open until the end so the kernel cannot hand out the
	// same port twice.
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
