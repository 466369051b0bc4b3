// Package aws holds the IAM policy documents Seed's AWS provider uses, as
// JSON files people can read and apply, embedded so the provider ships the
// exact text reviewed here.
package aws

import _ "embed"

// AgentPolicy is the inline policy of the control-plane role, which the agent
// uses through the instance profile. It is a template: ${Partition},
// ${Region}, ${AccountID}, ${ClusterName}, ${VPCID}, ${WorkerRoleName},
// ${ControlPlaneRoleName} and ${BucketName} are replaced before it is sent
// to IAM.
//
//go:embed agent-policy.json
var AgentPolicy string

// EC2TrustPolicy lets EC2 instances assume a role; every Seed role uses it.
//
//go:embed ec2-trust-policy.json
var EC2TrustPolicy string

// SeedPolicy is what the identity running `seed up` and `seed down` needs.
// It is not a template: apply it as is to a user, group or role.
//
//go:embed seed-policy.json
var SeedPolicy string
