// Package fake holds hand-written, in-memory fakes of the EC2, IAM, S3 and
// STS calls the AWS provider makes, with the behaviours real AWS shows and
// tests need to provoke: throttling, eventual consistency, capacity errors
// by zone, responses lost after the call took effect, idempotency tokens,
// dependency errors on deletion. Every fake counts its calls; Reset puts
// it back to new.
package fake
