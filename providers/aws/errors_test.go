package aws

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"

	"github.com/seedhq/seed/providers"
	"github.com/seedhq/seed/providers/aws/fake"
)

func TestKindOfDefaultsToRetryable(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want providers.ErrorKind
	}{
		// Known to never succeed as sent.
		{"bad parameter value", fake.APIError(codeInvalidParameterValue, "bad"), providers.KindInvalid},
		{"contradictory parameters", fake.APIError("InvalidParameterCombination", "bad"), providers.KindInvalid},
		{"unknown parameter", fake.APIError("UnknownParameter", "bad"), providers.KindInvalid},
		{"IAM validation", fake.APIError("ValidationError", "bad"), providers.KindInvalid},
		{"S3 malformed body", fake.APIError("MalformedXML", "bad"), providers.KindInvalid},
		{"client token reused differently", fake.APIError(codeIdempotentParameterMismatch, "bad"), providers.KindInvalid},
		{"malformed identifier", fake.APIError("InvalidVpcID.Malformed", "bad"), providers.KindInvalid},
		{"malformed AMI", fake.APIError("InvalidAMIID.Malformed", "bad"), providers.KindInvalid},
		{"subnet range taken", fake.APIError("InvalidSubnet.Conflict", "bad"), providers.KindInvalid},
		{"not authorised", fake.APIError("UnauthorizedOperation", "no"), providers.KindInvalid},
		{"bad credentials", fake.APIError("AuthFailure", "no"), providers.KindInvalid},
		{"region not enabled", fake.APIError("OptInRequired", "no"), providers.KindInvalid},
		{"bucket owned by another account", fake.APIError(codeBucketAlreadyExists, "taken"), providers.KindInvalid},

		// The provider asked us to slow down.
		{"EC2 throttling", fake.Throttled(), providers.KindThrottled},
		{"EC2 request limit", fake.APIError(codeRequestLimitExceeded, "slow"), providers.KindThrottled},
		{"generic throttling", fake.APIError("Throttling", "slow"), providers.KindThrottled},
		{"SDK retry budget spent", fmt.Errorf("op: %w", ratelimit.QuotaExceededError{}), providers.KindThrottled},

		// No room, here or in the account.
		{"zone out of capacity", fake.ServerError(codeInsufficientCapacity, "none"), providers.KindCapacity},
		{"vCPU quota", fake.APIError("VcpuLimitExceeded", "quota"), providers.KindCapacity},

		{"instance gone", fake.APIError(codeInvalidInstanceIDNotFound, "gone"), providers.KindNotFound},
		{"IAM entity gone", fake.APIError(codeNoSuchEntity, "gone"), providers.KindNotFound},

		// Worth another try.
		{"server fault", fake.ServerError("InternalError", "oops"), providers.KindTransient},
		{"dependency still settling", fake.APIError(codeDependencyViolation, "in use"), providers.KindTransient},
		{"no API code: connection reset", &net.OpError{Op: "read", Err: errors.New("connection reset by peer")}, providers.KindTransient},
		{"no API code: deadline", context.DeadlineExceeded, providers.KindTransient},
		{"unknown client-fault code", fake.APIError("SomethingAWSAddedLastWeek", "?"), providers.KindTransient},
		{"unknown server-fault code", fake.ServerError("SomethingElse", "?"), providers.KindTransient},
		{"unknown Invalid code that is not a malformed ID", fake.APIError("InvalidInstanceAttributeValue.Settling", "?"), providers.KindTransient},

		// A kind decided deeper in the chain stands.
		{"already classified", fmt.Errorf("ctx: %w", providers.NewError(providers.KindCapacity, "op", errors.New("x"))), providers.KindCapacity},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := kindOf(c.err); got != c.want {
				t.Errorf("kindOf(%v) = %s, want %s", c.err, got, c.want)
			}
			if got := providers.KindOf(classify("doing it", c.err)); got != c.want {
				t.Errorf("classify(%v) has kind %s, want %s", c.err, got, c.want)
			}
		})
	}
}
