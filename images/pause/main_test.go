package main

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

func TestRunStopsOnTerm(t *testing.T) {
	for _, sig := range []os.Signal{syscall.SIGTERM, syscall.SIGINT} {
		signals := make(chan os.Signal, 2)
		signals <- syscall.SIGCHLD // nothing to reap: must not block
		signals <- sig
		done := make(chan int)
		go func() { done <- run(signals) }()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("%v: exit code %d, want 0", sig, code)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%v: run did not return", sig)
		}
	}
}

func TestReapCollectsZombies(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot start a child: %v", err)
	}
	pid := cmd.Process.Pid
	deadline := time.Now().Add(5 * time.Second)
	for {
		reap()
		// Once reaped, the pid is gone: signalling it fails with ESRCH.
		if err := syscall.Kill(pid, 0); err == syscall.ESRCH {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("child %d was not reaped", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
