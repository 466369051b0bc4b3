package fake

import (
	"fmt"

	"github.com/aws/smithy-go"
)

// APIError is an AWS error as the SDK reports it: client fault (HTTP 400).
func APIError(code, format string, args ...any) error {
	return &smithy.GenericAPIError{Code: code, Message: fmt.Sprintf(format, args...), Fault: smithy.FaultClient}
}

// ServerError is an AWS error with a server fault (HTTP 5xx), as EC2 sends
// InsufficientInstanceCapacity and InternalError.
func ServerError(code, format string, args ...any) error {
	return &smithy.GenericAPIError{Code: code, Message: fmt.Sprintf(format, args...), Fault: smithy.FaultServer}
}

// Throttled is EC2's throttling error.
func Throttled() error {
	return ServerError("RequestLimitExceeded", "Request limit exceeded.")
}

// Fault is what an injected failure does to one call.
type Fault struct {
	// Err is returned to the caller.
	Err error
	// AfterApply makes the call take effect before Err is returned: the
	// response was lost, or the caller crashed before recording it.
	AfterApply bool
}
