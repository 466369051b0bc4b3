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
	codeResourceAlreadyAssociated   = "Resource.AlreadyAssociated"
	codeInvalidGroupDuplicate       = "InvalidGroup.Duplicate"
	codeInvalidSubnetConflict       = "InvalidSubnet.Conflict"
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

// permanentCodes say the request can never succeed as sent: it is
// malformed, contradicts itself, or the credentials are refused. Retrying
// it unchanged only spends API quota; a person must change the spec, the
// request or the permissions. Only codes known to mean that are here:
// anything else is retried with backoff (see kindOf).
var permanentCodes = map[string]bool{
	// Malformed or contradictory requests (EC2's common client errors).
	"InvalidParameter":            true,
	codeInvalidParameterValue:     true,
	"InvalidParameterCombination": true,
	"MissingParameter":            true,
	"UnknownParameter":            true,
	"InvalidAction":               true,
	"InvalidQueryParameter":       true,
	"MalformedQueryString":        true,
	"UnsupportedOperation":        true,
	"ValidationError":             true, // IAM, STS
	"MalformedPolicyDocument":     true, // IAM
	"MalformedXML":                true, // S3
	"InvalidArgument":             true, // S3
	"InvalidBucketName":           true, // S3
	// Our own request contradicts an earlier one with the same client token.
	codeIdempotentParameterMismatch: true,
	// What the spec asks for collides with what the account has.
	"InvalidSubnet.Range":     true,
	codeInvalidSubnetConflict: true,
	"InvalidVpc.Range":        true,
	// Someone else owns the bucket name.
	codeBucketAlreadyExists: true,
	// Answers that mean "already done": callers test for them before
	// classifying; if one gets through, retrying it changes nothing.
	codeInvalidPermissionDuplicate: true,
	codeRouteAlreadyExists:         true,
	codeEntityAlreadyExists:        true,
	// The credentials are refused, or the account may not use the region.
	"AuthFailure":                true,
	"UnauthorizedOperation":      true,
	"AccessDenied":               true,
	"AccessDeniedException":      true,
	"InvalidClientTokenId":       true,
	"SignatureDoesNotMatch":      true,
	"IncompleteSignature":        true,
	"MissingAuthenticationToken": true,
	"InvalidAccessKeyId":         true,
	"ExpiredToken":               true,
	"OptInRequired":              true,
	"Blocked":                    true,
	"AllAccessDisabled":          true,
}

// isPermanent: the code is a known "can never succeed as sent", or EC2's
// Invalid<Thing>.Malformed, an identifier that is not well formed.
func isPermanent(code string) bool {
	return permanentCodes[code] || (strings.HasPrefix(code, "Invalid") && strings.HasSuffix(code, ".Malformed"))
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
	case throttleCodes[c]:
		return providers.KindThrottled
	case zoneCapacityCodes[c], accountCapacityCodes[c]:
		return providers.KindCapacity
	case isNotFound(err):
		return providers.KindNotFound
	case isPermanent(c):
		return providers.KindInvalid
	default:
		// Connection errors, timeouts, server faults (InternalError,
		// ServiceUnavailable), state still settling (DependencyViolation,
		// IncorrectState), and every code not listed above. Calling a
		// failure permanent stops the agent from ever trying again, so it
		// takes a code known to mean it; a wrong "transient" costs retries
		// with backoff, and the error stays visible in status.
		return providers.KindTransient
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
