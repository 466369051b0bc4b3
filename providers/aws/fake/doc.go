// Package fake holds hand-written, in-memory fakes of the EC2, IAM, S3 and
// STS calls the AWS provider makes, with the behaviours real AWS shows and
// tests need to provoke: throttling, eventual consistency, capacity errors
// by zone, responses lost after the call took effect, idempotency tokens,
// dependency errors on deletion, the one-of rules (a group name per VPC,
// a gateway per VPC, a CIDR, an Elastic IP per address) that concurrent
// callers run into. Every fake counts its calls; Reset puts it back to
// new. Unlike EC2's, the fake's IDs are in creation order.
package fake
