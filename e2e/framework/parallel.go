package framework

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"
)

// ParallelEnv names how many clusters the end-to-end tests run at once.
const ParallelEnv = "SEED_E2E_PARALLEL"

// defaultParallel is two: an end-to-end test mostly waits (for machines to
// boot, timers to expire, drains to end), so two clusters share a machine
// of two cores, as CI's is, with CPU to spare.
const defaultParallel = 2

var (
	slotsOnce sync.Once
	slots     chan struct{}
	slotsErr  error
)

func clusterSlots() (chan struct{}, error) {
	slotsOnce.Do(func() {
		n := defaultParallel
		if s := os.Getenv(ParallelEnv); s != "" {
			v, err := strconv.Atoi(s)
			if err != nil || v < 1 {
				slotsErr = fmt.Errorf("%s=%q: want a whole number of clusters, 1 or more", ParallelEnv, s)
				return
			}
			n = v
		}
		slots = make(chan struct{}, n)
	})
	return slots, slotsErr
}

// Parallel runs the test beside the other end-to-end tests, once first
// has returned (a wait for what only this test needs, which holds no
// slot) and one of SEED_E2E_PARALLEL cluster slots is free. The slot is
// given back after everything the test registered later has run, `seed
// down` of its clusters included, so a slot always means one cluster's
// machines. Call it right after Require, before the test makes anything.
//
// The slots, not go test's -parallel, bound the clusters: a test waiting
// in first holds no slot, so another test runs meanwhile.
func Parallel(t *testing.T, first ...func(testing.TB)) {
	t.Helper()
	t.Parallel()
	for _, f := range first {
		f(t)
	}
	s, err := clusterSlots()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	s <- struct{}{}
	t.Cleanup(func() { <-s })
	if waited := time.Since(start); waited > time.Second {
		t.Logf("started after waiting %s for a cluster slot (%s=%d)", waited.Round(time.Second), ParallelEnv, cap(s))
	}
}
