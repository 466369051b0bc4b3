package aws

import (
	"errors"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"

	"github.com/seedhq/seed/providers"
)

// AWS error codes the provider branches on. They are the documented codes of
// the EC2, IAM and S3 APIs; the SDK reports them through smithy.APIError.
const (
	codeRequestLimitExceeded        = "RequestLimitExceeded"
	codeInsufficientCapacity        = "InsufficientInstanceCapacity"
	codeInsufficientAddresses       = "InsufficientFreeAddressesInSubnet"
	codeUnsupported                 = "Unsupported"
	codeIdempotentParameterMismatch = "IdempotentParameterMismatch"
	codeDependencyViolation         = "DependencyViolation"
	codeInvalidParameterValue       = "InvalidParameterValue"
	codeInvalidInstanceIDNotFound   = "InvalidInstanceID.NotFound"
	codeInvalidPermissionDuplicate  = "InvalidPermission.Duplicate"
	codeRouteAlreadyExists          = "RouteAlreadyExists"
	codeNoSuchEntity                = "NoSuchEntity"
	codeEntityAlreadyExists         = "EntityAlreadyExists"
	codeLimitExceeded               = "LimitExceeded"
	codeNoSuchBucket                = "NoSuchBucket"
	codeBucketAlreadyOwnedByYou     = "BucketAlreadyOwnedByYou"
	codeBucketAlreadyExists         = "BucketAlreadyExists"
)

// zoneCapacityCodes say "not here": the same request may succeed in another
// subnet or Availability Zone.
var zoneCapacityCodes = map[string]bool{
	codeInsufficientCapacity:   true,
	"InsufficientHostCapacity": true,
	codeInsufficientAddresses:  true,
	codeUnsupported:            true,
}

// accountCapacityCodes say "not for you": no zone will do until a quota rises.
var accountCapacityCodes = map[string]bool{
	"InstanceLimitExceeded":         true,
	"VcpuLimitExceeded":             true,
	"AddressLimitExceeded":          true,
	"VpcLimitExceeded":              true,
	"SubnetLimitExceeded":           true,
	"InternetGatewayLimitExceeded":  true,
	"SecurityGroupLimitExceeded":    true,
	"RouteTableLimitExceeded":       true,
	"NetworkInterfaceLimitExceeded": true,
	"TooManyBuckets":                true,
	codeLimitExceeded:               true,
}

var throttleCodes = func() map[string]bool {
	m := map[string]bool{}
	for c := range retry.DefaultThrottleErrorCodes {
		m[c] = true
	}
	return m
}()

var transientCodes = map[string]bool{
	"InternalError":                 true,
	"InternalFailure":               true,
	"ServiceUnavailable":            true,
	"Unavailable":                   true,
	"RequestTimeout":                true,
	codeDependencyViolation:         true,
	"IncorrectState":                true,
	"IncorrectInstanceState":        true,
	"InvalidNetworkInterface.InUse": true,
	"ConcurrentModification":        true,
	"OperationAborted":              true,
}

// errorCode is the API error code in err's chain, or "".
func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func isCode(err error, codes ...string) bool {
	c := errorCode(err)
	for _, want := range codes {
		if c == want {
			return true
		}
	}
	return false
}

// isNotFound covers every "does not exist" code of the calls made here: EC2
// spells them Invalid<Thing>ID.NotFound or Invalid<Thing>.NotFound, IAM
// NoSuchEntity, S3 NoSuchBucket or NotFound.
func isNotFound(err error) bool {
	c := errorCode(err)
	switch c {
	case codeNoSuchEntity, codeNoSuchBucket, "NotFound", "NoSuchKey":
		return true
	}
	return strings.HasPrefix(c, "Invalid") && strings.HasSuffix(c, ".NotFound")
}

func isZoneCapacity(err error) bool { return zoneCapacityCodes[errorCode(err)] }

// classify turns an SDK error into a providers.Error so callers can branch
// on the kind. op is the lower-case "doing X" context.
func classify(op string, err error) error {
	if err == nil {
		return nil
	}
	var pe *providers.Error
	if errors.As(err, &pe) {
		return err
	}
	return providers.NewError(kindOf(err), op, err)
}

func kindOf(err error) providers.ErrorKind {
	if k := providers.KindOf(err); k != "" {
		return k
	}
	var quota ratelimit.QuotaExceededError
	if errors.As(err, &quota) {
		// The SDK's client-side retry budget ran out: the account is being
		// throttled across calls, so slow down rather than retry at once.
		return providers.KindThrottled
	}
	c := errorCode(err)
	switch {
	case c == "":
		// Connection errors, timeouts, a cancelled context: worth another
		// try.
		return providers.KindTransient
	case throttleCodes[c]:
		return providers.KindThrottled
	case zoneCapacityCodes[c], accountCapacityCodes[c]:
		return providers.KindCapacity
	case isNotFound(err):
		return providers.KindNotFound
	case transientCodes[c]:
		return providers.KindTransient
	default:
		return providers.KindInvalid
	}
}

// noRetryOnCapacity stops the SDK from retrying capacity errors. EC2 sends
// InsufficientInstanceCapacity as a 500, which the standard retryer would
// otherwise retry in place; the provider moves to the next zone instead.
var noRetryOnCapacity = retry.IsErrorRetryableFunc(func(err error) aws.Ternary {
	if zoneCapacityCodes[errorCode(err)] || accountCapacityCodes[errorCode(err)] {
		return aws.FalseTernary
	}
	return aws.UnknownTernary
})
