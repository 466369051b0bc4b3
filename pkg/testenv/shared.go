package testenv

import (
	"context"
	"sync"
	"testing"
)

// Shared is one Env for all the tests of a package, started by the first
// test that asks for it and stopped after the last, so a package pays for
// one apiserver however many tests it has. Tests sharing it should keep to
// their own namespaces (see Env.Namespace). The zero value is ready to use:
//
//	var shared testenv.Shared
//
//	func TestMain(m *testing.M) { os.Exit(shared.Run(m)) }
//
//	func TestSomething(t *testing.T) {
//		env := shared.Env(t)
//		...
//	}
type Shared struct {
	mu      sync.Mutex
	started bool
	env     *Env
	err     error
}

// Run runs the package's tests and then stops the Env if one was started.
// Call it from TestMain and pass its result to os.Exit.
func (s *Shared) Run(m *testing.M) int {
	code := m.Run()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.env != nil {
		s.env.Stop()
	}
	return code
}

// Env returns the package's Env, starting it on first use. If it cannot be
// started, t is skipped or failed as Start describes, and so is every later
// caller, without trying again.
func (s *Shared) Env(t testing.TB) *Env {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started {
		s.started = true
		// Not t's context: the Env outlives the test that happens to start it.
		s.env, s.err = start(context.Background())
	}
	if s.err != nil {
		handleStartError(t, s.err)
	}
	return s.env
}
