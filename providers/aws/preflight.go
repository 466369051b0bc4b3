package aws

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/seedhq/seed/providers"
)

var regionRE = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d+$`)

// Control-plane minimums kubeadm checks in its own preflight.
const (
	minControlPlaneVCPUs     = 2
	minControlPlaneMemoryMiB = 1700
)

// Preflight checks, before anything is created, that the region answers,
// the instance types and the image exist (and agree on architecture), and
// that the VPC, subnets and key pair the spec names exist. Each problem
// names the spec field to fix; all are reported at once.
func (p *provider) Preflight(ctx context.Context) error {
	const op = "checking the AWS spec"
	if !regionRE.MatchString(p.spec.Region) {
		return providers.NewError(providers.KindInvalid, op, fmt.Errorf("spec.provider.aws.region %q is not a region name such as eu-west-1", p.spec.Region))
	}
	zones, err := p.ec2.DescribeAvailabilityZones(ctx, &ec2.DescribeAvailabilityZonesInput{})
	if err != nil {
		if kindOf(err) == providers.KindInvalid {
			return providers.NewError(providers.KindInvalid, op, fmt.Errorf("spec.provider.aws.region %q: the credentials cannot use it: %w", p.spec.Region, err))
		}
		return classify(op+": spec.provider.aws.region "+p.spec.Region+" does not answer", err)
	}
	var problems []error
	known := map[string]bool{}
	for _, z := range zones.AvailabilityZones {
		known[deref(z.ZoneName)] = true
	}
	for i, z := range p.spec.AvailabilityZones {
		if !known[z] {
			problems = append(problems, fmt.Errorf("spec.provider.aws.availabilityZones[%d]: %q is not a zone of %s", i, z, p.spec.Region))
		}
	}

	// Instance types: one call for all; on failure, one per type to say
	// which field is wrong (EC2 names the bad type only in its message).
	fields := make([]string, 0, len(p.types))
	for f := range p.types {
		fields = append(fields, f)
	}
	sort.Strings(fields)
	var names []string
	seen := map[string]bool{}
	for _, f := range fields {
		if t := p.types[f]; !seen[t] {
			seen[t] = true
			names = append(names, t)
		}
	}
	infos := map[string]instanceType{}
	if len(names) > 0 {
		if got, err := p.describeTypes(ctx, names); err == nil {
			infos = got
		} else if kindOf(err) == providers.KindInvalid || isCode(err, "InvalidInstanceType") {
			for _, f := range fields {
				got, err := p.describeTypes(ctx, []string{p.types[f]})
				if err != nil {
					problems = append(problems, fmt.Errorf("%s: instance type %q is not offered in %s", f, p.types[f], p.spec.Region))
					continue
				}
				infos[p.types[f]] = got[p.types[f]]
			}
		} else {
			return classify(op, err)
		}
	}
	archs := map[string]string{}
	for _, f := range fields {
		t, ok := infos[p.types[f]]
		if !ok {
			continue
		}
		if f == "spec.controlPlane.machineType" && (t.vcpus < minControlPlaneVCPUs || t.memoryMiB < minControlPlaneMemoryMiB) {
			problems = append(problems, fmt.Errorf("%s: %s has %d vCPUs and %d MiB; the control plane needs at least %d and %d",
				f, p.types[f], t.vcpus, t.memoryMiB, minControlPlaneVCPUs, minControlPlaneMemoryMiB))
		}
		if _, ok := archs[t.arch]; !ok {
			archs[t.arch] = f
		}
	}

	// The image, for every architecture the types need.
	if len(archs) == 0 {
		archs["x86_64"] = ""
	}
	archList := make([]string, 0, len(archs))
	for a := range archs {
		archList = append(archList, a)
	}
	sort.Strings(archList)
	for _, a := range archList {
		if _, err := p.image(ctx, a); err != nil {
			if kindOf(err) != providers.KindInvalid {
				return err
			}
			msg := err.Error()
			if archs[a] != "" {
				msg += " (needed by " + archs[a] + ")"
			}
			problems = append(problems, errors.New(msg))
		}
	}

	if p.spec.VPCID != "" {
		_, err := p.ec2.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{VpcIds: []string{p.spec.VPCID}})
		switch {
		case isNotFound(err) || isCode(err, "InvalidVpcID.Malformed"):
			problems = append(problems, fmt.Errorf("spec.provider.aws.vpcID: %s does not exist in %s", p.spec.VPCID, p.spec.Region))
		case err != nil:
			return classify(op, err)
		default:
			if _, err := p.specSubnets(ctx); err != nil {
				if kindOf(err) != providers.KindInvalid {
					return err
				}
				problems = append(problems, fmt.Errorf("spec.provider.aws.subnetIDs: %w", errors.Unwrap(err)))
			}
		}
	}
	if p.spec.SSHKeyName != "" {
		_, err := p.ec2.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{KeyNames: []string{p.spec.SSHKeyName}})
		switch {
		case isNotFound(err):
			problems = append(problems, fmt.Errorf("spec.provider.aws.sshKeyName: key pair %q does not exist in %s", p.spec.SSHKeyName, p.spec.Region))
		case err != nil:
			return classify(op, err)
		}
	}
	if len(problems) > 0 {
		return providers.NewError(providers.KindInvalid, op, errors.Join(problems...))
	}
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
