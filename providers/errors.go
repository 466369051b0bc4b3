package providers

import (
	"errors"
	"fmt"
	"time"
)

// ErrorKind classifies provider failures that callers act on differently.
type ErrorKind string

const (
	// KindNotFound: the machine or resource does not exist.
	KindNotFound ErrorKind = "NotFound"
	// KindCapacity: the provider has no room (quota, insufficient capacity).
	KindCapacity ErrorKind = "Capacity"
	// KindThrottled: the provider asked us to slow down.
	KindThrottled ErrorKind = "Throttled"
	// KindTransient: a failure worth retrying as is.
	KindTransient ErrorKind = "Transient"
	// KindInvalid: the request can never succeed as written.
	KindInvalid ErrorKind = "Invalid"
)

// Error is a classified provider failure.
type Error struct {
	Kind ErrorKind
	// Op is what was being done, e.g. "creating machine seed-workers-abcde".
	Op string
	// RetryAfter, when set, is how long the provider asked us to wait.
	RetryAfter time.Duration
	Err        error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("%s: %s", e.Op, e.Kind)
	}
	return fmt.Sprintf("%s: %v", e.Op, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// NewError classifies err as kind, with op saying what was being done.
func NewError(kind ErrorKind, op string, err error) error {
	return &Error{Kind: kind, Op: op, Err: err}
}

// KindOf returns the kind of the first classified error in err's chain, or "".
func KindOf(err error) ErrorKind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return ""
}

// IsNotFound reports whether err says the thing does not exist.
func IsNotFound(err error) bool { return KindOf(err) == KindNotFound }

// IsCapacity reports whether err says the provider has no room.
func IsCapacity(err error) bool { return KindOf(err) == KindCapacity }

// IsThrottled reports whether err says the provider asked us to slow down.
func IsThrottled(err error) bool { return KindOf(err) == KindThrottled }

// IsTransient reports whether err is worth retrying as is: throttling and
// transient failures are.
func IsTransient(err error) bool {
	k := KindOf(err)
	return k == KindTransient || k == KindThrottled
}

// IsInvalid reports whether the request can never succeed as written.
func IsInvalid(err error) bool { return KindOf(err) == KindInvalid }

// IgnoreNotFound returns nil for a not-found error and err otherwise.
func IgnoreNotFound(err error) error {
	if IsNotFound(err) {
		return nil
	}
	return err
}
