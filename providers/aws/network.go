package aws

import (
	"context"
	"errors"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/seedhq/seed/providers"
)

// network is what machines are launched into.
type network struct {
	vpcID   string
	subnets []subnet
	// nodesSG is on every machine: all traffic between members.
	nodesSG string
	// apiSG is on every control plane's interface: 6443 from the allowed
	// CIDRs.
	apiSG string
	// ep is the control-plane endpoint, found on demand.
	ep *endpoint
}

type subnet struct {
	id string
	az string
}

// network returns the cluster's network, finding it by tags the first
// time: the agent, in its own process, never ran EnsureInfrastructure.
func (p *provider) network(ctx context.Context) (*network, error) {
	p.mu.Lock()
	n := p.net
	p.mu.Unlock()
	if n != nil {
		return n, nil
	}
	const op = "finding the cluster's network"
	n = &network{vpcID: p.spec.VPCID}
	in := &ec2.DescribeSubnetsInput{}
	if len(p.spec.SubnetIDs) > 0 {
		in.SubnetIds = p.spec.SubnetIDs
	} else {
		in.Filters = p.ownedFilters(filter("tag:"+tagComponent, componentSubnet))
	}
	subs, err := p.describeSubnets(ctx, in)
	if err != nil {
		return nil, classify(op, err)
	}
	for _, s := range subs {
		n.subnets = append(n.subnets, subnet{id: aws.ToString(s.SubnetId), az: aws.ToString(s.AvailabilityZone)})
		if n.vpcID == "" {
			n.vpcID = aws.ToString(s.VpcId)
		}
	}
	sortSubnets(n.subnets)
	sgs, err := p.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: p.ownedFilters()})
	if err != nil {
		return nil, classify(op, err)
	}
	for _, g := range sgs.SecurityGroups {
		switch tagMap(g.Tags)[tagComponent] {
		case componentNodes:
			n.nodesSG = aws.ToString(g.GroupId)
		case componentAPIServer:
			n.apiSG = aws.ToString(g.GroupId)
		}
	}
	if len(n.subnets) == 0 || n.nodesSG == "" {
		return nil, providers.NewError(providers.KindNotFound, op,
			errors.New("no subnets or security groups are tagged for this cluster: run EnsureInfrastructure (seed up) first"))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.net == nil {
		p.net = n
	}
	return p.net, nil
}

func sortSubnets(s []subnet) {
	sort.Slice(s, func(i, j int) bool {
		if s[i].az != s[j].az {
			return s[i].az < s[j].az
		}
		return s[i].id < s[j].id
	})
}

func (p *provider) describeSubnets(ctx context.Context, in *ec2.DescribeSubnetsInput) ([]types.Subnet, error) {
	var out []types.Subnet
	if len(in.SubnetIds) == 0 {
		in.MaxResults = aws.Int32(p.pageSize)
	}
	for {
		res, err := p.ec2.DescribeSubnets(ctx, in)
		if err != nil {
			return nil, err
		}
		out = append(out, res.Subnets...)
		if aws.ToString(res.NextToken) == "" {
			return out, nil
		}
		in.NextToken = res.NextToken
	}
}
