package v1alpha1

import (
	"errors"
	"strconv"
	"strings"
)

// FieldError is one problem with a spec, tied to the field that has it.
type FieldError struct {
	// Field is the path of the field, e.g. spec.nodePools[1].replicas, or
	// labels[app] for a map entry. Empty means the document as a whole (it
	// is not YAML, or it is empty).
	Field string
	// Detail says what is wrong and what would be valid.
	Detail string
}

func (e FieldError) Error() string {
	if e.Field == "" {
		return e.Detail
	}
	return e.Field + ": " + e.Detail
}

// InvalidSpecError is every problem found in one spec. It means the spec can
// never work as written: retrying does not help, the user has to edit it.
type InvalidSpecError struct {
	Errors []FieldError
}

// Error lists every problem, one per line, so that a user fixes them all in
// one edit rather than one per attempt.
func (e *InvalidSpecError) Error() string {
	if len(e.Errors) == 0 {
		return "invalid cluster spec"
	}
	lines := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		lines[i] = fe.Error()
	}
	return strings.Join(lines, "\n")
}

// IsInvalidSpec reports whether err, or any error it wraps, is an
// *InvalidSpecError.
func IsInvalidSpec(err error) bool {
	var e *InvalidSpecError
	return errors.As(err, &e)
}

// errorList collects FieldErrors in the order they are found.
type errorList []FieldError

func (l *errorList) add(field, detail string) {
	*l = append(*l, FieldError{Field: field, Detail: detail})
}

// err returns the collected problems as an error, or nil when there are none,
// so callers never hold a non-nil error interface wrapping a nil pointer.
func (l errorList) err() error {
	if len(l) == 0 {
		return nil
	}
	return &InvalidSpecError{Errors: l}
}

// Field paths are built the way Kubernetes prints them, so that messages
// read like kubectl's: spec.nodePools[0].labels[app].

func child(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

func index(parent string, i int) string {
	return parent + "[" + strconv.Itoa(i) + "]"
}

func key(parent, k string) string {
	return parent + "[" + k + "]"
}

// within reports whether field is path or something inside it.
func within(field, path string) bool {
	if !strings.HasPrefix(field, path) {
		return false
	}
	rest := field[len(path):]
	return rest == "" || rest[0] == '.' || rest[0] == '['
}
