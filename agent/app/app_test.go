package app

import (
	"math"
	"net/http"
	"net/http/httptest"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/go-logr/logr"
)

func TestMemoryIsTunedToTheContainer(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(math.MaxInt64))

	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	t.Setenv("SEED_MEMORY_LIMIT", "268435456") // 256Mi
	if err := tuneMemory(logr.Discard()); err != nil {
		t.Fatal(err)
	}
	if got := debug.SetGCPercent(100); got != 50 {
		t.Errorf("GOGC unset: GC percent %d, want 50", got)
	}
	if got := debug.SetMemoryLimit(-1); got != 268435456/100*85 {
		t.Errorf("soft memory limit %d, want 85%% of 256Mi", got)
	}

	// The user's own settings win.
	debug.SetMemoryLimit(math.MaxInt64)
	t.Setenv("GOGC", "200")
	t.Setenv("GOMEMLIMIT", "1GiB")
	if err := tuneMemory(logr.Discard()); err != nil {
		t.Fatal(err)
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GOGC=200 set: tuneMemory changed the GC percent to %d", got)
	}
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("GOMEMLIMIT set: tuneMemory changed the limit to %d", got)
	}

	t.Setenv("GOMEMLIMIT", "")
	t.Setenv("SEED_MEMORY_LIMIT", "256Mi")
	if err := tuneMemory(logr.Discard()); err == nil || !strings.Contains(err.Error(), "SEED_MEMORY_LIMIT") {
		t.Errorf("SEED_MEMORY_LIMIT=256Mi: got %v, want an error naming it", err)
	}
}

func TestCPUProfileTakesSecondsFromOneToThreeHundred(t *testing.T) {
	for _, bad := range []string{"0", "301", "x"} {
		w := httptest.NewRecorder()
		cpuProfile(w, httptest.NewRequest(http.MethodGet, "/debug/pprof/profile?seconds="+bad, nil))
		if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "seconds") {
			t.Errorf("seconds=%s: %d %q, want 400 naming seconds", bad, w.Code, w.Body.String())
		}
	}
	w := httptest.NewRecorder()
	cpuProfile(w, httptest.NewRequest(http.MethodGet, "/debug/pprof/profile?seconds=1", nil))
	if w.Code != http.StatusOK || w.Body.Len() == 0 {
		t.Errorf("seconds=1: %d with %d bytes, want a profile", w.Code, w.Body.Len())
	}
}
