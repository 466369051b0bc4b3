package fake

import (
	"context"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
)

// IAM is an in-memory IAM with roles, inline and attached policies, and
// instance profiles, and IAM's error codes (NoSuchEntity,
// EntityAlreadyExists, DeleteConflict, LimitExceeded).
type IAM struct {
	mu       sync.Mutex
	account  string
	roles    map[string]*role
	profiles map[string]*iamtypes.InstanceProfile
	faults   map[string][]Fault
	calls    map[string]int
	// CreatedAt records when each instance profile was created.
	CreatedAt map[string]time.Time
	clock     *Clock
}

type role struct {
	iamtypes.Role
	inline   map[string]string
	attached []iamtypes.AttachedPolicy
}

// NewIAM returns an empty IAM for the default account.
func NewIAM(clock *Clock) *IAM {
	f := &IAM{clock: clock}
	f.Reset()
	return f
}

// Reset forgets everything.
func (f *IAM) Reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.account = DefaultAccountID
	f.roles = map[string]*role{}
	f.profiles = map[string]*iamtypes.InstanceProfile{}
	f.faults = map[string][]Fault{}
	f.calls = map[string]int{}
	f.CreatedAt = map[string]time.Time{}
}

// InjectFault queues faults for the next calls of op.
func (f *IAM) InjectFault(op string, faults ...Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults[op] = append(f.faults[op], faults...)
}

// Calls is how many times op was called.
func (f *IAM) Calls(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

// Roles and Profiles list what exists, by name.
func (f *IAM) Roles() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return sortedKeys(f.roles)
}

// Profiles lists the instance profiles.
func (f *IAM) Profiles() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return sortedKeys(f.profiles)
}

// InlinePolicy returns a role's inline policy document.
func (f *IAM) InlinePolicy(roleName, policy string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r := f.roles[roleName]; r != nil {
		return r.inline[policy]
	}
	return ""
}

// AttachPolicy attaches a managed policy, as a user might.
func (f *IAM) AttachPolicy(roleName, arn string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r := f.roles[roleName]; r != nil {
		r.attached = append(r.attached, iamtypes.AttachedPolicy{PolicyArn: aws.String(arn)})
	}
}

func (f *IAM) begin(op string) (error, error) {
	f.calls[op]++
	if q := f.faults[op]; len(q) > 0 {
		f.faults[op] = q[1:]
		if q[0].AfterApply {
			return nil, q[0].Err
		}
		return q[0].Err, nil
	}
	return nil, nil
}

func iamOp[O any](f *IAM, name string, do func() (*O, error)) (*O, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	before, after := f.begin(name)
	if before != nil {
		return nil, before
	}
	out, err := do()
	if err != nil {
		return nil, err
	}
	if after != nil {
		return nil, after
	}
	return out, nil
}

func noSuchEntity(kind, name string) error {
	return APIError("NoSuchEntity", "The %s with name %s cannot be found.", kind, name)
}

func (f *IAM) GetRole(_ context.Context, in *iam.GetRoleInput, _ ...func(*iam.Options)) (*iam.GetRoleOutput, error) {
	return iamOp(f, "GetRole", func() (*iam.GetRoleOutput, error) {
		r := f.roles[aws.ToString(in.RoleName)]
		if r == nil {
			return nil, noSuchEntity("role", aws.ToString(in.RoleName))
		}
		role := r.Role
		return &iam.GetRoleOutput{Role: &role}, nil
	})
}

func (f *IAM) CreateRole(_ context.Context, in *iam.CreateRoleInput, _ ...func(*iam.Options)) (*iam.CreateRoleOutput, error) {
	return iamOp(f, "CreateRole", func() (*iam.CreateRoleOutput, error) {
		name := aws.ToString(in.RoleName)
		if len(name) > 64 {
			return nil, APIError("ValidationError", "roleName must be at most 64 characters")
		}
		if f.roles[name] != nil {
			return nil, APIError("EntityAlreadyExists", "Role with name %s already exists.", name)
		}
		r := &role{inline: map[string]string{}, Role: iamtypes.Role{
			RoleName: in.RoleName, Arn: aws.String("arn:aws:iam::" + f.account + ":role/" + name),
			AssumeRolePolicyDocument: in.AssumeRolePolicyDocument, Tags: in.Tags, Path: aws.String("/"),
		}}
		f.roles[name] = r
		role := r.Role
		return &iam.CreateRoleOutput{Role: &role}, nil
	})
}

func (f *IAM) DeleteRole(_ context.Context, in *iam.DeleteRoleInput, _ ...func(*iam.Options)) (*iam.DeleteRoleOutput, error) {
	return iamOp(f, "DeleteRole", func() (*iam.DeleteRoleOutput, error) {
		name := aws.ToString(in.RoleName)
		r := f.roles[name]
		if r == nil {
			return nil, noSuchEntity("role", name)
		}
		if len(r.inline) > 0 || len(r.attached) > 0 {
			return nil, APIError("DeleteConflict", "Cannot delete entity, must delete policies first.")
		}
		for _, p := range f.profiles {
			for _, pr := range p.Roles {
				if aws.ToString(pr.RoleName) == name {
					return nil, APIError("DeleteConflict", "Cannot delete entity, must remove roles from instance profile first.")
				}
			}
		}
		delete(f.roles, name)
		return &iam.DeleteRoleOutput{}, nil
	})
}

func (f *IAM) PutRolePolicy(_ context.Context, in *iam.PutRolePolicyInput, _ ...func(*iam.Options)) (*iam.PutRolePolicyOutput, error) {
	return iamOp(f, "PutRolePolicy", func() (*iam.PutRolePolicyOutput, error) {
		r := f.roles[aws.ToString(in.RoleName)]
		if r == nil {
			return nil, noSuchEntity("role", aws.ToString(in.RoleName))
		}
		if len(aws.ToString(in.PolicyDocument)) > 10240 {
			return nil, APIError("LimitExceeded", "Maximum policy size of 10240 bytes exceeded for role %s", aws.ToString(in.RoleName))
		}
		r.inline[aws.ToString(in.PolicyName)] = aws.ToString(in.PolicyDocument)
		return &iam.PutRolePolicyOutput{}, nil
	})
}

func (f *IAM) ListRolePolicies(_ context.Context, in *iam.ListRolePoliciesInput, _ ...func(*iam.Options)) (*iam.ListRolePoliciesOutput, error) {
	return iamOp(f, "ListRolePolicies", func() (*iam.ListRolePoliciesOutput, error) {
		r := f.roles[aws.ToString(in.RoleName)]
		if r == nil {
			return nil, noSuchEntity("role", aws.ToString(in.RoleName))
		}
		names := sortedKeys(r.inline)
		return &iam.ListRolePoliciesOutput{PolicyNames: names}, nil
	})
}

func (f *IAM) DeleteRolePolicy(_ context.Context, in *iam.DeleteRolePolicyInput, _ ...func(*iam.Options)) (*iam.DeleteRolePolicyOutput, error) {
	return iamOp(f, "DeleteRolePolicy", func() (*iam.DeleteRolePolicyOutput, error) {
		r := f.roles[aws.ToString(in.RoleName)]
		if r == nil {
			return nil, noSuchEntity("role", aws.ToString(in.RoleName))
		}
		if _, ok := r.inline[aws.ToString(in.PolicyName)]; !ok {
			return nil, noSuchEntity("policy", aws.ToString(in.PolicyName))
		}
		delete(r.inline, aws.ToString(in.PolicyName))
		return &iam.DeleteRolePolicyOutput{}, nil
	})
}

func (f *IAM) ListAttachedRolePolicies(_ context.Context, in *iam.ListAttachedRolePoliciesInput, _ ...func(*iam.Options)) (*iam.ListAttachedRolePoliciesOutput, error) {
	return iamOp(f, "ListAttachedRolePolicies", func() (*iam.ListAttachedRolePoliciesOutput, error) {
		r := f.roles[aws.ToString(in.RoleName)]
		if r == nil {
			return nil, noSuchEntity("role", aws.ToString(in.RoleName))
		}
		return &iam.ListAttachedRolePoliciesOutput{AttachedPolicies: append([]iamtypes.AttachedPolicy(nil), r.attached...)}, nil
	})
}

func (f *IAM) DetachRolePolicy(_ context.Context, in *iam.DetachRolePolicyInput, _ ...func(*iam.Options)) (*iam.DetachRolePolicyOutput, error) {
	return iamOp(f, "DetachRolePolicy", func() (*iam.DetachRolePolicyOutput, error) {
		r := f.roles[aws.ToString(in.RoleName)]
		if r == nil {
			return nil, noSuchEntity("role", aws.ToString(in.RoleName))
		}
		for i, a := range r.attached {
			if aws.ToString(a.PolicyArn) == aws.ToString(in.PolicyArn) {
				r.attached = append(r.attached[:i], r.attached[i+1:]...)
				return &iam.DetachRolePolicyOutput{}, nil
			}
		}
		return nil, noSuchEntity("policy", aws.ToString(in.PolicyArn))
	})
}

func (f *IAM) GetInstanceProfile(_ context.Context, in *iam.GetInstanceProfileInput, _ ...func(*iam.Options)) (*iam.GetInstanceProfileOutput, error) {
	return iamOp(f, "GetInstanceProfile", func() (*iam.GetInstanceProfileOutput, error) {
		p := f.profiles[aws.ToString(in.InstanceProfileName)]
		if p == nil {
			return nil, noSuchEntity("instance profile", aws.ToString(in.InstanceProfileName))
		}
		cp := *p
		cp.Roles = append([]iamtypes.Role(nil), p.Roles...)
		return &iam.GetInstanceProfileOutput{InstanceProfile: &cp}, nil
	})
}

func (f *IAM) CreateInstanceProfile(_ context.Context, in *iam.CreateInstanceProfileInput, _ ...func(*iam.Options)) (*iam.CreateInstanceProfileOutput, error) {
	return iamOp(f, "CreateInstanceProfile", func() (*iam.CreateInstanceProfileOutput, error) {
		name := aws.ToString(in.InstanceProfileName)
		if f.profiles[name] != nil {
			return nil, APIError("EntityAlreadyExists", "Instance Profile %s already exists.", name)
		}
		p := &iamtypes.InstanceProfile{InstanceProfileName: in.InstanceProfileName, Tags: in.Tags,
			Arn: aws.String("arn:aws:iam::" + f.account + ":instance-profile/" + name)}
		f.profiles[name] = p
		if f.clock != nil {
			f.CreatedAt[name] = f.clock.Now()
		}
		cp := *p
		return &iam.CreateInstanceProfileOutput{InstanceProfile: &cp}, nil
	})
}

func (f *IAM) AddRoleToInstanceProfile(_ context.Context, in *iam.AddRoleToInstanceProfileInput, _ ...func(*iam.Options)) (*iam.AddRoleToInstanceProfileOutput, error) {
	return iamOp(f, "AddRoleToInstanceProfile", func() (*iam.AddRoleToInstanceProfileOutput, error) {
		p := f.profiles[aws.ToString(in.InstanceProfileName)]
		if p == nil {
			return nil, noSuchEntity("instance profile", aws.ToString(in.InstanceProfileName))
		}
		r := f.roles[aws.ToString(in.RoleName)]
		if r == nil {
			return nil, noSuchEntity("role", aws.ToString(in.RoleName))
		}
		if len(p.Roles) > 0 {
			return nil, APIError("LimitExceeded", "Cannot exceed quota for InstanceSessionsPerInstanceProfile: 1")
		}
		p.Roles = append(p.Roles, r.Role)
		return &iam.AddRoleToInstanceProfileOutput{}, nil
	})
}

func (f *IAM) RemoveRoleFromInstanceProfile(_ context.Context, in *iam.RemoveRoleFromInstanceProfileInput, _ ...func(*iam.Options)) (*iam.RemoveRoleFromInstanceProfileOutput, error) {
	return iamOp(f, "RemoveRoleFromInstanceProfile", func() (*iam.RemoveRoleFromInstanceProfileOutput, error) {
		p := f.profiles[aws.ToString(in.InstanceProfileName)]
		if p == nil {
			return nil, noSuchEntity("instance profile", aws.ToString(in.InstanceProfileName))
		}
		for i, r := range p.Roles {
			if aws.ToString(r.RoleName) == aws.ToString(in.RoleName) {
				p.Roles = append(p.Roles[:i], p.Roles[i+1:]...)
				return &iam.RemoveRoleFromInstanceProfileOutput{}, nil
			}
		}
		return nil, noSuchEntity("role", aws.ToString(in.RoleName))
	})
}

func (f *IAM) DeleteInstanceProfile(_ context.Context, in *iam.DeleteInstanceProfileInput, _ ...func(*iam.Options)) (*iam.DeleteInstanceProfileOutput, error) {
	return iamOp(f, "DeleteInstanceProfile", func() (*iam.DeleteInstanceProfileOutput, error) {
		name := aws.ToString(in.InstanceProfileName)
		p := f.profiles[name]
		if p == nil {
			return nil, noSuchEntity("instance profile", name)
		}
		if len(p.Roles) > 0 {
			return nil, APIError("DeleteConflict", "Cannot delete entity, must remove roles from instance profile first.")
		}
		delete(f.profiles, name)
		return &iam.DeleteInstanceProfileOutput{}, nil
	})
}
