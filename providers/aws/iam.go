package aws

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"

	awsmanifests "github.com/seedhq/seed/manifests/aws"
	"github.com/seedhq/seed/providers"
)

// agentPolicyName is the control-plane role's inline policy.
const agentPolicyName = "seed-agent"

var policyValueRE = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// agentPolicy renders manifests/aws/agent-policy.json for this cluster.
func agentPolicy(partition, region, accountID, cluster, vpcID string) (string, error) {
	values := map[string]string{
		"Partition":      partition,
		"Region":         region,
		"AccountID":      accountID,
		"ClusterName":    cluster,
		"VPCID":          vpcID,
		"WorkerRoleName": workerRoleName(cluster),
		// Passed when the agent launches a replacement control plane.
		"ControlPlaneRoleName": controlPlaneRoleName(cluster),
		// The agent lists and reads the staged images (both prefixes), to
		// presign them for the machines it launches.
		"BucketName": bucketName(accountID, region, cluster),
		// Velero and the etcd snapshots use two prefixes of the backup
		// bucket, and only those (see backupstore.go).
		"BackupBucketName": backupBucketName(accountID, region, cluster),
	}
	var pairs []string
	for k, v := range values {
		// Values are identifiers; checking them keeps the JSON well formed.
		if !policyValueRE.MatchString(v) {
			return "", fmt.Errorf("rendering the agent policy: %s %q is not a plain identifier", k, v)
		}
		pairs = append(pairs, "${"+k+"}", v)
	}
	doc := strings.NewReplacer(pairs...).Replace(awsmanifests.AgentPolicy)
	if i := strings.Index(doc, "${"); i >= 0 {
		return "", fmt.Errorf("rendering the agent policy: unknown placeholder at %q", doc[i:min(len(doc), i+20)])
	}
	var v any
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		return "", fmt.Errorf("rendering the agent policy: %w", err)
	}
	// Compact: IAM counts whitespace against the 10,240-character limit.
	b, _ := json.Marshal(v)
	return string(b), nil
}

func (p *provider) iamTags() []iamtypes.Tag {
	return []iamtypes.Tag{
		{Key: aws.String(ownershipKey(p.cluster)), Value: aws.String(ownedValue)},
		{Key: aws.String(providers.LabelCluster), Value: aws.String(p.cluster)},
	}
}

func ownsIAM(tags []iamtypes.Tag, cluster string) bool {
	m := map[string]string{}
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m[ownershipKey(cluster)] == ownedValue && m[providers.LabelCluster] == cluster
}

// ensureIAM makes the control-plane and worker roles and instance
// profiles, and puts the agent policy on the control-plane role. The
// worker role has no policy: it exists so the agent's iam:PassRole can
// name exactly one role, and so users can attach what their workloads need.
func (p *provider) ensureIAM(ctx context.Context, vpcID string) error {
	a, err := p.callerAccount(ctx)
	if err != nil {
		return err
	}
	policy, err := agentPolicy(a.partition, p.spec.Region, a.id, p.cluster, vpcID)
	if err != nil {
		return providers.NewError(providers.KindInvalid, "creating IAM roles", err)
	}
	for _, name := range []string{controlPlaneRoleName(p.cluster), workerRoleName(p.cluster)} {
		if err := p.ensureRole(ctx, name); err != nil {
			return err
		}
		if name == controlPlaneRoleName(p.cluster) {
			if _, err := p.iam.PutRolePolicy(ctx, &iam.PutRolePolicyInput{
				RoleName:       aws.String(name),
				PolicyName:     aws.String(agentPolicyName),
				PolicyDocument: aws.String(policy),
			}); err != nil {
				return classify("putting the agent policy on role "+name, err)
			}
		}
		if err := p.ensureInstanceProfile(ctx, name); err != nil {
			return err
		}
	}
	return nil
}

func (p *provider) ensureRole(ctx context.Context, name string) error {
	op := "creating IAM role " + name
	out, err := p.iam.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(name)})
	if err == nil {
		if !ownsIAM(out.Role.Tags, p.cluster) {
			return providers.NewError(providers.KindInvalid, op, fmt.Errorf("role %s exists but is not tagged as owned by cluster %s", name, p.cluster))
		}
		return nil
	}
	if !isCode(err, codeNoSuchEntity) {
		return classify(op, err)
	}
	p.log.Info("Creating IAM role", "role", name)
	_, err = p.iam.CreateRole(ctx, &iam.CreateRoleInput{
		RoleName:                 aws.String(name),
		AssumeRolePolicyDocument: aws.String(awsmanifests.EC2TrustPolicy),
		Description:              aws.String("Seed cluster " + p.cluster),
		Tags:                     p.iamTags(),
	})
	if err != nil && !isCode(err, codeEntityAlreadyExists) {
		return classify(op, err)
	}
	return nil
}

func (p *provider) ensureInstanceProfile(ctx context.Context, name string) error {
	op := "creating instance profile " + name
	var roles []iamtypes.Role
	out, err := p.iam.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String(name)})
	switch {
	case err == nil:
		if !ownsIAM(out.InstanceProfile.Tags, p.cluster) {
			return providers.NewError(providers.KindInvalid, op, fmt.Errorf("instance profile %s exists but is not tagged as owned by cluster %s", name, p.cluster))
		}
		roles = out.InstanceProfile.Roles
	case isCode(err, codeNoSuchEntity):
		p.log.Info("Creating instance profile", "instanceProfile", name)
		_, err = p.iam.CreateInstanceProfile(ctx, &iam.CreateInstanceProfileInput{
			InstanceProfileName: aws.String(name),
			Tags:                p.iamTags(),
		})
		if err != nil && !isCode(err, codeEntityAlreadyExists) {
			return classify(op, err)
		}
	default:
		return classify(op, err)
	}
	for _, r := range roles {
		if aws.ToString(r.RoleName) == name {
			return nil
		}
	}
	_, err = p.iam.AddRoleToInstanceProfile(ctx, &iam.AddRoleToInstanceProfileInput{
		InstanceProfileName: aws.String(name),
		RoleName:            aws.String(name),
	})
	// LimitExceeded: a profile holds one role, and ours already has it.
	if err != nil && !isCode(err, codeLimitExceeded) {
		return classify(op, err)
	}
	return nil
}

// deleteIAM removes the cluster's instance profiles and roles, those
// tagged as its own. Policies someone attached to them are detached first.
func (p *provider) deleteIAM(ctx context.Context) []error {
	var errs []error
	for _, name := range []string{controlPlaneRoleName(p.cluster), workerRoleName(p.cluster)} {
		if err := p.deleteInstanceProfile(ctx, name); err != nil {
			errs = append(errs, fmt.Errorf("instance profile %s: %w", name, err))
		}
		if err := p.deleteRole(ctx, name); err != nil {
			errs = append(errs, fmt.Errorf("role %s: %w", name, err))
		}
	}
	return errs
}

func (p *provider) deleteInstanceProfile(ctx context.Context, name string) error {
	out, err := p.iam.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String(name)})
	if isCode(err, codeNoSuchEntity) {
		return nil
	}
	if err != nil {
		return err
	}
	if !ownsIAM(out.InstanceProfile.Tags, p.cluster) {
		p.log.Info("Leaving instance profile: it is not tagged as this cluster's", "instanceProfile", name)
		return nil
	}
	for _, r := range out.InstanceProfile.Roles {
		if _, err := p.iam.RemoveRoleFromInstanceProfile(ctx, &iam.RemoveRoleFromInstanceProfileInput{
			InstanceProfileName: aws.String(name), RoleName: r.RoleName,
		}); err != nil && !isCode(err, codeNoSuchEntity) {
			return err
		}
	}
	p.log.Info("Deleting instance profile", "instanceProfile", name)
	_, err = p.iam.DeleteInstanceProfile(ctx, &iam.DeleteInstanceProfileInput{InstanceProfileName: aws.String(name)})
	if isCode(err, codeNoSuchEntity) {
		return nil
	}
	return err
}

func (p *provider) deleteRole(ctx context.Context, name string) error {
	out, err := p.iam.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(name)})
	if isCode(err, codeNoSuchEntity) {
		return nil
	}
	if err != nil {
		return err
	}
	if !ownsIAM(out.Role.Tags, p.cluster) {
		p.log.Info("Leaving role: it is not tagged as this cluster's", "role", name)
		return nil
	}
	pols, err := p.iam.ListRolePolicies(ctx, &iam.ListRolePoliciesInput{RoleName: aws.String(name)})
	if err != nil {
		return err
	}
	for _, pol := range pols.PolicyNames {
		if _, err := p.iam.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String(pol)}); err != nil && !isCode(err, codeNoSuchEntity) {
			return err
		}
	}
	att, err := p.iam.ListAttachedRolePolicies(ctx, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(name)})
	if err != nil {
		return err
	}
	for _, pol := range att.AttachedPolicies {
		if _, err := p.iam.DetachRolePolicy(ctx, &iam.DetachRolePolicyInput{RoleName: aws.String(name), PolicyArn: pol.PolicyArn}); err != nil && !isCode(err, codeNoSuchEntity) {
			return err
		}
	}
	p.log.Info("Deleting IAM role", "role", name)
	_, err = p.iam.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String(name)})
	if isCode(err, codeNoSuchEntity) {
		return nil
	}
	return err
}
