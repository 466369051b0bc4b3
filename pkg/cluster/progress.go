package cluster

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// progress prints one line when a long step starts and one when it ends,
// with its duration, so a user watching `seed up` knows what it waits for.
type progress struct {
	mu  sync.Mutex
	out io.Writer
	now func() time.Time
}

func newProgress(out io.Writer) *progress { return &progress{out: out, now: time.Now} }

type step struct {
	p     *progress
	name  string
	start time.Time
}

func (p *progress) printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.out, format, args...)
}

func (p *progress) start(format string, args ...any) *step {
	s := &step{p: p, name: fmt.Sprintf(format, args...), start: p.now()}
	p.printf(" • %s ...\n", s.name)
	return s
}

func (p *progress) note(format string, args ...any) {
	p.printf(" • %s\n", fmt.Sprintf(format, args...))
}

// warn is for what the user must act on although the command succeeds.
func (p *progress) warn(format string, args ...any) {
	p.printf(" ! Warning: %s\n", fmt.Sprintf(format, args...))
}

func (s *step) elapsed() string { return s.p.now().Sub(s.start).Round(100 * time.Millisecond).String() }

func (s *step) done() { s.p.printf(" ✓ %s (%s)\n", s.name, s.elapsed()) }

func (s *step) doneWith(format string, args ...any) {
	s.p.printf(" ✓ %s: %s (%s)\n", s.name, fmt.Sprintf(format, args...), s.elapsed())
}

func (s *step) detail(msg string) { s.p.printf("   … %s\n", msg) }

func (s *step) fail(err error) error {
	s.p.printf(" ✗ %s (%s)\n", s.name, s.elapsed())
	return err
}
