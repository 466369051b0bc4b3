package fake

import (
	"context"
	"fmt"
	"net"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// op wraps a call: counts it, applies faults, holds the lock.
func op[O any](f *EC2, name string, do func() (*O, error)) (*O, error) {
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

func selectByIDs[T any](m map[string]*T, ids []string, notFound string, fields func(*T) fieldFunc, filters []types.Filter) ([]T, error) {
	if err := checkFilters(filters, fields(new(T))); err != nil {
		return nil, err
	}
	var keys []string
	if len(ids) > 0 {
		for _, id := range ids {
			if m[id] == nil {
				return nil, APIError(notFound, "The ID '%s' does not exist", id)
			}
		}
		keys = ids
	} else {
		keys = sortedKeys(m)
	}
	var out []T
	for _, k := range keys {
		ok, err := match(filters, fields(m[k]))
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, *m[k])
		}
	}
	return out, nil
}

// --- VPCs ---------------------------------------------------------------

// CreateVpc makes a VPC with its main route table and default security
// group, as EC2 does.
func (f *EC2) CreateVpc(_ context.Context, in *ec2.CreateVpcInput, _ ...func(*ec2.Options)) (*ec2.CreateVpcOutput, error) {
	return op(f, "CreateVpc", func() (*ec2.CreateVpcOutput, error) {
		if _, _, err := net.ParseCIDR(aws.ToString(in.CidrBlock)); err != nil {
			return nil, APIError("InvalidParameterValue", "Value (%s) for parameter cidrBlock is invalid.", aws.ToString(in.CidrBlock))
		}
		if err := checkTagSpecs(in.TagSpecifications, types.ResourceTypeVpc); err != nil {
			return nil, err
		}
		id := f.id("vpc")
		v := &types.Vpc{VpcId: aws.String(id), CidrBlock: in.CidrBlock, State: types.VpcStateAvailable,
			OwnerId: aws.String(f.account), Tags: tags(in.TagSpecifications, types.ResourceTypeVpc)}
		f.vpcs[id] = v
		rt := f.id("rtb")
		f.rts[rt] = &types.RouteTable{RouteTableId: aws.String(rt), VpcId: aws.String(id),
			Associations: []types.RouteTableAssociation{{Main: aws.Bool(true), RouteTableAssociationId: aws.String(f.id("rtbassoc")), RouteTableId: aws.String(rt)}},
			Routes:       []types.Route{{DestinationCidrBlock: in.CidrBlock, GatewayId: aws.String("local")}}}
		sg := f.id("sg")
		f.sgs[sg] = &types.SecurityGroup{GroupId: aws.String(sg), GroupName: aws.String("default"), VpcId: aws.String(id),
			Description: aws.String("default VPC security group")}
		out := *v
		return &ec2.CreateVpcOutput{Vpc: &out}, nil
	})
}

func vpcFields(v *types.Vpc) fieldFunc {
	return func(name string) ([]string, bool) {
		switch name {
		case "vpc-id":
			return []string{aws.ToString(v.VpcId)}, true
		case "cidr":
			return []string{aws.ToString(v.CidrBlock)}, true
		case "state":
			return []string{string(v.State)}, true
		}
		return tagFields(v.Tags, name)
	}
}

// DescribeVpcs lists VPCs by ID or filters.
func (f *EC2) DescribeVpcs(_ context.Context, in *ec2.DescribeVpcsInput, _ ...func(*ec2.Options)) (*ec2.DescribeVpcsOutput, error) {
	return op(f, "DescribeVpcs", func() (*ec2.DescribeVpcsOutput, error) {
		for _, id := range in.VpcIds {
			if !strings.HasPrefix(id, "vpc-") {
				return nil, APIError("InvalidVpcID.Malformed", "Invalid id: \"%s\"", id)
			}
		}
		vs, err := selectByIDs(f.vpcs, in.VpcIds, "InvalidVpcID.NotFound", vpcFields, in.Filters)
		if err != nil {
			return nil, err
		}
		return &ec2.DescribeVpcsOutput{Vpcs: vs}, nil
	})
}

// DeleteVpc fails with DependencyViolation while the VPC has subnets,
// security groups other than the default, an attached internet gateway or
// route tables other than the main one.
func (f *EC2) DeleteVpc(_ context.Context, in *ec2.DeleteVpcInput, _ ...func(*ec2.Options)) (*ec2.DeleteVpcOutput, error) {
	return op(f, "DeleteVpc", func() (*ec2.DeleteVpcOutput, error) {
		id := aws.ToString(in.VpcId)
		if f.vpcs[id] == nil {
			return nil, APIError("InvalidVpcID.NotFound", "The vpc ID '%s' does not exist", id)
		}
		dep := func(what string) error {
			return APIError("DependencyViolation", "The vpc '%s' has dependencies and cannot be deleted (%s).", id, what)
		}
		for _, s := range f.subnets {
			if aws.ToString(s.VpcId) == id {
				return nil, dep("subnet")
			}
		}
		for _, g := range f.sgs {
			if aws.ToString(g.VpcId) == id && aws.ToString(g.GroupName) != "default" {
				return nil, dep("security group")
			}
		}
		for _, g := range f.igws {
			for _, a := range g.Attachments {
				if aws.ToString(a.VpcId) == id {
					return nil, dep("internet gateway")
				}
			}
		}
		for _, rt := range f.rts {
			if aws.ToString(rt.VpcId) == id && !isMain(rt) {
				return nil, dep("route table")
			}
		}
		for k, rt := range f.rts {
			if aws.ToString(rt.VpcId) == id {
				delete(f.rts, k)
			}
		}
		for k, g := range f.sgs {
			if aws.ToString(g.VpcId) == id {
				delete(f.sgs, k)
			}
		}
		delete(f.vpcs, id)
		return &ec2.DeleteVpcOutput{}, nil
	})
}

func isMain(rt *types.RouteTable) bool {
	for _, a := range rt.Associations {
		if aws.ToBool(a.Main) {
			return true
		}
	}
	return false
}

// --- subnets --------------------------------------------------------------

// CreateSubnet makes a subnet in a zone; its CIDR must be inside the VPC's
// and overlap no other subnet.
func (f *EC2) CreateSubnet(_ context.Context, in *ec2.CreateSubnetInput, _ ...func(*ec2.Options)) (*ec2.CreateSubnetOutput, error) {
	return op(f, "CreateSubnet", func() (*ec2.CreateSubnetOutput, error) {
		if err := f.young(aws.ToString(in.VpcId)); err != nil {
			return nil, err
		}
		v := f.vpcs[aws.ToString(in.VpcId)]
		if v == nil {
			return nil, APIError("InvalidVpcID.NotFound", "The vpc ID '%s' does not exist", aws.ToString(in.VpcId))
		}
		if err := checkTagSpecs(in.TagSpecifications, types.ResourceTypeSubnet); err != nil {
			return nil, err
		}
		zone := aws.ToString(in.AvailabilityZone)
		if !contains(f.zones, zone) {
			return nil, APIError("InvalidParameterValue", "Value (%s) for parameter availabilityZone is invalid.", zone)
		}
		_, vnet, _ := net.ParseCIDR(aws.ToString(v.CidrBlock))
		ip, snet, err := net.ParseCIDR(aws.ToString(in.CidrBlock))
		if err != nil || !vnet.Contains(ip) {
			return nil, APIError("InvalidSubnet.Range", "The CIDR '%s' is invalid.", aws.ToString(in.CidrBlock))
		}
		for _, s := range f.subnets {
			_, other, _ := net.ParseCIDR(aws.ToString(s.CidrBlock))
			if aws.ToString(s.VpcId) == aws.ToString(in.VpcId) && (other.Contains(snet.IP) || snet.Contains(other.IP)) {
				return nil, APIError("InvalidSubnet.Conflict", "The CIDR '%s' conflicts with another subnet", aws.ToString(in.CidrBlock))
			}
		}
		id := f.id("subnet")
		s := &types.Subnet{SubnetId: aws.String(id), VpcId: in.VpcId, CidrBlock: in.CidrBlock, AvailabilityZone: aws.String(zone),
			State: types.SubnetStateAvailable, MapPublicIpOnLaunch: aws.Bool(false), OwnerId: aws.String(f.account),
			Tags: tags(in.TagSpecifications, types.ResourceTypeSubnet)}
		f.subnets[id] = s
		out := *s
		return &ec2.CreateSubnetOutput{Subnet: &out}, nil
	})
}

func subnetFields(s *types.Subnet) fieldFunc {
	return func(name string) ([]string, bool) {
		switch name {
		case "subnet-id":
			return []string{aws.ToString(s.SubnetId)}, true
		case "vpc-id":
			return []string{aws.ToString(s.VpcId)}, true
		case "availability-zone":
			return []string{aws.ToString(s.AvailabilityZone)}, true
		case "cidr-block":
			return []string{aws.ToString(s.CidrBlock)}, true
		}
		return tagFields(s.Tags, name)
	}
}

// DescribeSubnets lists subnets by ID or filters, paginated.
func (f *EC2) DescribeSubnets(_ context.Context, in *ec2.DescribeSubnetsInput, _ ...func(*ec2.Options)) (*ec2.DescribeSubnetsOutput, error) {
	return op(f, "DescribeSubnets", func() (*ec2.DescribeSubnetsOutput, error) {
		if err := checkMaxResults(in.MaxResults, 5, 1000); err != nil {
			return nil, err
		}
		ss, err := selectByIDs(f.subnets, in.SubnetIds, "InvalidSubnetID.NotFound", subnetFields, in.Filters)
		if err != nil {
			return nil, err
		}
		pg, next, err := page(ss, in.MaxResults, in.NextToken)
		if err != nil {
			return nil, err
		}
		return &ec2.DescribeSubnetsOutput{Subnets: pg, NextToken: next}, nil
	})
}

// ModifySubnetAttribute sets MapPublicIpOnLaunch.
func (f *EC2) ModifySubnetAttribute(_ context.Context, in *ec2.ModifySubnetAttributeInput, _ ...func(*ec2.Options)) (*ec2.ModifySubnetAttributeOutput, error) {
	return op(f, "ModifySubnetAttribute", func() (*ec2.ModifySubnetAttributeOutput, error) {
		if err := f.young(aws.ToString(in.SubnetId)); err != nil {
			return nil, err
		}
		s := f.subnets[aws.ToString(in.SubnetId)]
		if s == nil {
			return nil, APIError("InvalidSubnetID.NotFound", "The subnet ID '%s' does not exist", aws.ToString(in.SubnetId))
		}
		if in.MapPublicIpOnLaunch != nil {
			s.MapPublicIpOnLaunch = aws.Bool(aws.ToBool(in.MapPublicIpOnLaunch.Value))
		}
		return &ec2.ModifySubnetAttributeOutput{}, nil
	})
}

// DeleteSubnet fails with DependencyViolation while an interface (of an
// instance not yet terminated, or a standalone one) is in it.
func (f *EC2) DeleteSubnet(_ context.Context, in *ec2.DeleteSubnetInput, _ ...func(*ec2.Options)) (*ec2.DeleteSubnetOutput, error) {
	return op(f, "DeleteSubnet", func() (*ec2.DeleteSubnetOutput, error) {
		id := aws.ToString(in.SubnetId)
		if f.subnets[id] == nil {
			return nil, APIError("InvalidSubnetID.NotFound", "The subnet ID '%s' does not exist", id)
		}
		for _, e := range f.enis {
			if aws.ToString(e.SubnetId) == id {
				return nil, APIError("DependencyViolation", "The subnet '%s' has dependencies and cannot be deleted.", id)
			}
		}
		for _, rt := range f.rts {
			var keep []types.RouteTableAssociation
			for _, a := range rt.Associations {
				if aws.ToString(a.SubnetId) != id {
					keep = append(keep, a)
				}
			}
			rt.Associations = keep
		}
		delete(f.subnets, id)
		return &ec2.DeleteSubnetOutput{}, nil
	})
}

// --- internet gateways ----------------------------------------------------

// CreateInternetGateway makes a detached gateway.
func (f *EC2) CreateInternetGateway(_ context.Context, in *ec2.CreateInternetGatewayInput, _ ...func(*ec2.Options)) (*ec2.CreateInternetGatewayOutput, error) {
	return op(f, "CreateInternetGateway", func() (*ec2.CreateInternetGatewayOutput, error) {
		if err := checkTagSpecs(in.TagSpecifications, types.ResourceTypeInternetGateway); err != nil {
			return nil, err
		}
		id := f.id("igw")
		g := &types.InternetGateway{InternetGatewayId: aws.String(id), OwnerId: aws.String(f.account),
			Tags: tags(in.TagSpecifications, types.ResourceTypeInternetGateway)}
		f.igws[id] = g
		out := *g
		return &ec2.CreateInternetGatewayOutput{InternetGateway: &out}, nil
	})
}

func igwFields(g *types.InternetGateway) fieldFunc {
	return func(name string) ([]string, bool) {
		switch name {
		case "internet-gateway-id":
			return []string{aws.ToString(g.InternetGatewayId)}, true
		case "attachment.vpc-id":
			var v []string
			for _, a := range g.Attachments {
				v = append(v, aws.ToString(a.VpcId))
			}
			return v, true
		}
		return tagFields(g.Tags, name)
	}
}

// DescribeInternetGateways lists gateways by ID or filters.
func (f *EC2) DescribeInternetGateways(_ context.Context, in *ec2.DescribeInternetGatewaysInput, _ ...func(*ec2.Options)) (*ec2.DescribeInternetGatewaysOutput, error) {
	return op(f, "DescribeInternetGateways", func() (*ec2.DescribeInternetGatewaysOutput, error) {
		gs, err := selectByIDs(f.igws, in.InternetGatewayIds, "InvalidInternetGatewayID.NotFound", igwFields, in.Filters)
		if err != nil {
			return nil, err
		}
		return &ec2.DescribeInternetGatewaysOutput{InternetGateways: gs}, nil
	})
}

// AttachInternetGateway attaches a gateway to a VPC. As in EC2, a gateway
// attaches to one VPC (Resource.AlreadyAssociated) and a VPC takes one
// gateway (InvalidParameterValue).
func (f *EC2) AttachInternetGateway(_ context.Context, in *ec2.AttachInternetGatewayInput, _ ...func(*ec2.Options)) (*ec2.AttachInternetGatewayOutput, error) {
	return op(f, "AttachInternetGateway", func() (*ec2.AttachInternetGatewayOutput, error) {
		if err := f.young(aws.ToString(in.InternetGatewayId), aws.ToString(in.VpcId)); err != nil {
			return nil, err
		}
		g := f.igws[aws.ToString(in.InternetGatewayId)]
		if g == nil {
			return nil, APIError("InvalidInternetGatewayID.NotFound", "The internetGateway ID '%s' does not exist", aws.ToString(in.InternetGatewayId))
		}
		if f.vpcs[aws.ToString(in.VpcId)] == nil {
			return nil, APIError("InvalidVpcID.NotFound", "The vpc ID '%s' does not exist", aws.ToString(in.VpcId))
		}
		if len(g.Attachments) > 0 {
			return nil, APIError("Resource.AlreadyAssociated", "resource %s is already attached to network %s", aws.ToString(g.InternetGatewayId), aws.ToString(g.Attachments[0].VpcId))
		}
		for _, other := range f.igws {
			for _, a := range other.Attachments {
				if aws.ToString(a.VpcId) == aws.ToString(in.VpcId) {
					return nil, APIError("InvalidParameterValue", "Network %s already has an internet gateway attached", aws.ToString(in.VpcId))
				}
			}
		}
		g.Attachments = []types.InternetGatewayAttachment{{VpcId: in.VpcId, State: types.AttachmentStatus("available")}}
		return &ec2.AttachInternetGatewayOutput{}, nil
	})
}

// DetachInternetGateway fails with DependencyViolation while the VPC has
// mapped public addresses (Elastic IPs or instances' public IPs).
func (f *EC2) DetachInternetGateway(_ context.Context, in *ec2.DetachInternetGatewayInput, _ ...func(*ec2.Options)) (*ec2.DetachInternetGatewayOutput, error) {
	return op(f, "DetachInternetGateway", func() (*ec2.DetachInternetGatewayOutput, error) {
		g := f.igws[aws.ToString(in.InternetGatewayId)]
		if g == nil {
			return nil, APIError("InvalidInternetGatewayID.NotFound", "The internetGateway ID '%s' does not exist", aws.ToString(in.InternetGatewayId))
		}
		vpc := aws.ToString(in.VpcId)
		if len(g.Attachments) == 0 || aws.ToString(g.Attachments[0].VpcId) != vpc {
			return nil, APIError("Gateway.NotAttached", "resource %s is not attached to network %s", aws.ToString(g.InternetGatewayId), vpc)
		}
		for _, a := range f.addresses {
			if a.NetworkInterfaceId != nil {
				if e := f.enis[aws.ToString(a.NetworkInterfaceId)]; e != nil && aws.ToString(e.VpcId) == vpc {
					return nil, APIError("DependencyViolation", "Network %s has some mapped public address(es). Please unmap those public address(es) before detaching the gateway.", vpc)
				}
			}
		}
		g.Attachments = nil
		return &ec2.DetachInternetGatewayOutput{}, nil
	})
}

// DeleteInternetGateway fails with DependencyViolation while attached.
func (f *EC2) DeleteInternetGateway(_ context.Context, in *ec2.DeleteInternetGatewayInput, _ ...func(*ec2.Options)) (*ec2.DeleteInternetGatewayOutput, error) {
	return op(f, "DeleteInternetGateway", func() (*ec2.DeleteInternetGatewayOutput, error) {
		id := aws.ToString(in.InternetGatewayId)
		g := f.igws[id]
		if g == nil {
			return nil, APIError("InvalidInternetGatewayID.NotFound", "The internetGateway ID '%s' does not exist", id)
		}
		if len(g.Attachments) > 0 {
			return nil, APIError("DependencyViolation", "The internetGateway '%s' has dependencies and cannot be deleted.", id)
		}
		delete(f.igws, id)
		return &ec2.DeleteInternetGatewayOutput{}, nil
	})
}

// --- route tables -------------------------------------------------------

// CreateRouteTable makes a route table with the local route; a ClientToken
// seen before returns the same table.
func (f *EC2) CreateRouteTable(_ context.Context, in *ec2.CreateRouteTableInput, _ ...func(*ec2.Options)) (*ec2.CreateRouteTableOutput, error) {
	return op(f, "CreateRouteTable", func() (*ec2.CreateRouteTableOutput, error) {
		if id, ok := f.rtTokens[aws.ToString(in.ClientToken)]; ok && in.ClientToken != nil {
			if rt := f.rts[id]; rt != nil {
				out := *rt
				return &ec2.CreateRouteTableOutput{RouteTable: &out, ClientToken: in.ClientToken}, nil
			}
		}
		v := f.vpcs[aws.ToString(in.VpcId)]
		if v == nil {
			return nil, APIError("InvalidVpcID.NotFound", "The vpc ID '%s' does not exist", aws.ToString(in.VpcId))
		}
		if err := checkTagSpecs(in.TagSpecifications, types.ResourceTypeRouteTable); err != nil {
			return nil, err
		}
		id := f.id("rtb")
		rt := &types.RouteTable{RouteTableId: aws.String(id), VpcId: in.VpcId, OwnerId: aws.String(f.account),
			Routes: []types.Route{{DestinationCidrBlock: v.CidrBlock, GatewayId: aws.String("local")}},
			Tags:   tags(in.TagSpecifications, types.ResourceTypeRouteTable)}
		f.rts[id] = rt
		if in.ClientToken != nil {
			f.rtTokens[*in.ClientToken] = id
		}
		out := *rt
		return &ec2.CreateRouteTableOutput{RouteTable: &out, ClientToken: in.ClientToken}, nil
	})
}

func rtFields(rt *types.RouteTable) fieldFunc {
	return func(name string) ([]string, bool) {
		switch name {
		case "route-table-id":
			return []string{aws.ToString(rt.RouteTableId)}, true
		case "vpc-id":
			return []string{aws.ToString(rt.VpcId)}, true
		case "association.subnet-id":
			var v []string
			for _, a := range rt.Associations {
				v = append(v, aws.ToString(a.SubnetId))
			}
			return v, true
		}
		return tagFields(rt.Tags, name)
	}
}

// DescribeRouteTables lists route tables by ID or filters.
func (f *EC2) DescribeRouteTables(_ context.Context, in *ec2.DescribeRouteTablesInput, _ ...func(*ec2.Options)) (*ec2.DescribeRouteTablesOutput, error) {
	return op(f, "DescribeRouteTables", func() (*ec2.DescribeRouteTablesOutput, error) {
		rts, err := selectByIDs(f.rts, in.RouteTableIds, "InvalidRouteTableID.NotFound", rtFields, in.Filters)
		if err != nil {
			return nil, err
		}
		return &ec2.DescribeRouteTablesOutput{RouteTables: rts}, nil
	})
}

// CreateRoute adds a route through an internet gateway, which must be
// attached to the route table's VPC.
func (f *EC2) CreateRoute(_ context.Context, in *ec2.CreateRouteInput, _ ...func(*ec2.Options)) (*ec2.CreateRouteOutput, error) {
	return op(f, "CreateRoute", func() (*ec2.CreateRouteOutput, error) {
		if err := f.young(aws.ToString(in.RouteTableId), aws.ToString(in.GatewayId)); err != nil {
			return nil, err
		}
		rt := f.rts[aws.ToString(in.RouteTableId)]
		if rt == nil {
			return nil, APIError("InvalidRouteTableID.NotFound", "The routeTable ID '%s' does not exist", aws.ToString(in.RouteTableId))
		}
		g := f.igws[aws.ToString(in.GatewayId)]
		if g == nil {
			return nil, APIError("InvalidGatewayID.NotFound", "The gateway ID '%s' does not exist", aws.ToString(in.GatewayId))
		}
		if len(g.Attachments) == 0 || aws.ToString(g.Attachments[0].VpcId) != aws.ToString(rt.VpcId) {
			return nil, APIError("InvalidParameterValue", "route table %s and network gateway %s belong to different networks", aws.ToString(rt.RouteTableId), aws.ToString(g.InternetGatewayId))
		}
		for _, r := range rt.Routes {
			if aws.ToString(r.DestinationCidrBlock) == aws.ToString(in.DestinationCidrBlock) {
				return nil, APIError("RouteAlreadyExists", "The route identified by %s already exists.", aws.ToString(in.DestinationCidrBlock))
			}
		}
		rt.Routes = append(rt.Routes, types.Route{DestinationCidrBlock: in.DestinationCidrBlock, GatewayId: in.GatewayId, State: types.RouteStateActive})
		return &ec2.CreateRouteOutput{Return: aws.Bool(true)}, nil
	})
}

// AssociateRouteTable associates a subnet with a route table.
func (f *EC2) AssociateRouteTable(_ context.Context, in *ec2.AssociateRouteTableInput, _ ...func(*ec2.Options)) (*ec2.AssociateRouteTableOutput, error) {
	return op(f, "AssociateRouteTable", func() (*ec2.AssociateRouteTableOutput, error) {
		if err := f.young(aws.ToString(in.RouteTableId), aws.ToString(in.SubnetId)); err != nil {
			return nil, err
		}
		rt := f.rts[aws.ToString(in.RouteTableId)]
		if rt == nil {
			return nil, APIError("InvalidRouteTableID.NotFound", "The routeTable ID '%s' does not exist", aws.ToString(in.RouteTableId))
		}
		sub := aws.ToString(in.SubnetId)
		if f.subnets[sub] == nil {
			return nil, APIError("InvalidSubnetID.NotFound", "The subnet ID '%s' does not exist", sub)
		}
		for _, other := range f.rts {
			for _, a := range other.Associations {
				if aws.ToString(a.SubnetId) == sub {
					return nil, APIError("Resource.AlreadyAssociated", "the specified association for route table %s conflicts with an existing association", aws.ToString(other.RouteTableId))
				}
			}
		}
		id := f.id("rtbassoc")
		rt.Associations = append(rt.Associations, types.RouteTableAssociation{RouteTableAssociationId: aws.String(id), RouteTableId: rt.RouteTableId, SubnetId: aws.String(sub), Main: aws.Bool(false)})
		return &ec2.AssociateRouteTableOutput{AssociationId: aws.String(id)}, nil
	})
}

// DeleteRouteTable fails with DependencyViolation while subnets use it.
func (f *EC2) DeleteRouteTable(_ context.Context, in *ec2.DeleteRouteTableInput, _ ...func(*ec2.Options)) (*ec2.DeleteRouteTableOutput, error) {
	return op(f, "DeleteRouteTable", func() (*ec2.DeleteRouteTableOutput, error) {
		id := aws.ToString(in.RouteTableId)
		rt := f.rts[id]
		if rt == nil {
			return nil, APIError("InvalidRouteTableID.NotFound", "The routeTable ID '%s' does not exist", id)
		}
		if len(rt.Associations) > 0 {
			return nil, APIError("DependencyViolation", "The routeTable '%s' has dependencies and cannot be deleted.", id)
		}
		delete(f.rts, id)
		return &ec2.DeleteRouteTableOutput{}, nil
	})
}

// --- security groups ----------------------------------------------------

// CreateSecurityGroup makes a group; names are unique per VPC.
func (f *EC2) CreateSecurityGroup(_ context.Context, in *ec2.CreateSecurityGroupInput, _ ...func(*ec2.Options)) (*ec2.CreateSecurityGroupOutput, error) {
	return op(f, "CreateSecurityGroup", func() (*ec2.CreateSecurityGroupOutput, error) {
		if f.vpcs[aws.ToString(in.VpcId)] == nil {
			return nil, APIError("InvalidVpcID.NotFound", "The vpc ID '%s' does not exist", aws.ToString(in.VpcId))
		}
		if err := checkTagSpecs(in.TagSpecifications, types.ResourceTypeSecurityGroup); err != nil {
			return nil, err
		}
		for _, g := range f.sgs {
			if aws.ToString(g.VpcId) == aws.ToString(in.VpcId) && aws.ToString(g.GroupName) == aws.ToString(in.GroupName) {
				return nil, APIError("InvalidGroup.Duplicate", "The security group '%s' already exists for VPC '%s'", aws.ToString(in.GroupName), aws.ToString(in.VpcId))
			}
		}
		id := f.id("sg")
		f.sgs[id] = &types.SecurityGroup{GroupId: aws.String(id), GroupName: in.GroupName, Description: in.Description,
			VpcId: in.VpcId, OwnerId: aws.String(f.account), Tags: tags(in.TagSpecifications, types.ResourceTypeSecurityGroup)}
		return &ec2.CreateSecurityGroupOutput{GroupId: aws.String(id)}, nil
	})
}

func sgFields(g *types.SecurityGroup) fieldFunc {
	return func(name string) ([]string, bool) {
		switch name {
		case "group-id":
			return []string{aws.ToString(g.GroupId)}, true
		case "group-name":
			return []string{aws.ToString(g.GroupName)}, true
		case "vpc-id":
			return []string{aws.ToString(g.VpcId)}, true
		}
		return tagFields(g.Tags, name)
	}
}

// DescribeSecurityGroups lists groups by ID or filters.
func (f *EC2) DescribeSecurityGroups(_ context.Context, in *ec2.DescribeSecurityGroupsInput, _ ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error) {
	return op(f, "DescribeSecurityGroups", func() (*ec2.DescribeSecurityGroupsOutput, error) {
		gs, err := selectByIDs(f.sgs, in.GroupIds, "InvalidGroup.NotFound", sgFields, in.Filters)
		if err != nil {
			return nil, err
		}
		return &ec2.DescribeSecurityGroupsOutput{SecurityGroups: gs}, nil
	})
}

// AuthorizeSecurityGroupIngress adds rules; a rule that exists already
// fails the call with InvalidPermission.Duplicate.
func (f *EC2) AuthorizeSecurityGroupIngress(_ context.Context, in *ec2.AuthorizeSecurityGroupIngressInput, _ ...func(*ec2.Options)) (*ec2.AuthorizeSecurityGroupIngressOutput, error) {
	return op(f, "AuthorizeSecurityGroupIngress", func() (*ec2.AuthorizeSecurityGroupIngressOutput, error) {
		if err := f.young(aws.ToString(in.GroupId)); err != nil {
			return nil, err
		}
		g := f.sgs[aws.ToString(in.GroupId)]
		if g == nil {
			return nil, APIError("InvalidGroup.NotFound", "The security group '%s' does not exist", aws.ToString(in.GroupId))
		}
		if err := checkTagSpecs(in.TagSpecifications, types.ResourceTypeSecurityGroupRule); err != nil {
			return nil, err
		}
		for _, p := range in.IpPermissions {
			for _, pair := range p.UserIdGroupPairs {
				if f.sgs[aws.ToString(pair.GroupId)] == nil {
					return nil, APIError("InvalidGroup.NotFound", "The security group '%s' does not exist", aws.ToString(pair.GroupId))
				}
			}
			for _, h := range g.IpPermissions {
				if permKey(h) == permKey(p) {
					return nil, APIError("InvalidPermission.Duplicate", "the specified rule \"peer: %s, %s\" already exists", permKey(p), aws.ToString(p.IpProtocol))
				}
			}
		}
		g.IpPermissions = append(g.IpPermissions, in.IpPermissions...)
		return &ec2.AuthorizeSecurityGroupIngressOutput{Return: aws.Bool(true)}, nil
	})
}

func permKey(p types.IpPermission) string {
	var peers []string
	for _, r := range p.IpRanges {
		peers = append(peers, aws.ToString(r.CidrIp))
	}
	for _, g := range p.UserIdGroupPairs {
		peers = append(peers, aws.ToString(g.GroupId))
	}
	return fmt.Sprintf("%s/%d-%d/%s", aws.ToString(p.IpProtocol), aws.ToInt32(p.FromPort), aws.ToInt32(p.ToPort), strings.Join(peers, ","))
}

// DeleteSecurityGroup fails with DependencyViolation while an interface
// uses the group.
func (f *EC2) DeleteSecurityGroup(_ context.Context, in *ec2.DeleteSecurityGroupInput, _ ...func(*ec2.Options)) (*ec2.DeleteSecurityGroupOutput, error) {
	return op(f, "DeleteSecurityGroup", func() (*ec2.DeleteSecurityGroupOutput, error) {
		id := aws.ToString(in.GroupId)
		if f.sgs[id] == nil {
			return nil, APIError("InvalidGroup.NotFound", "The security group '%s' does not exist", id)
		}
		for _, e := range f.enis {
			for _, g := range e.Groups {
				if aws.ToString(g.GroupId) == id {
					return nil, APIError("DependencyViolation", "resource %s has a dependent object", id)
				}
			}
		}
		delete(f.sgs, id)
		return &ec2.DeleteSecurityGroupOutput{Return: aws.Bool(true)}, nil
	})
}

// --- network interfaces -------------------------------------------------

// CreateNetworkInterface makes an available interface; a ClientToken seen
// before returns the same one.
func (f *EC2) CreateNetworkInterface(_ context.Context, in *ec2.CreateNetworkInterfaceInput, _ ...func(*ec2.Options)) (*ec2.CreateNetworkInterfaceOutput, error) {
	return op(f, "CreateNetworkInterface", func() (*ec2.CreateNetworkInterfaceOutput, error) {
		if id, ok := f.eniTokens[aws.ToString(in.ClientToken)]; ok && in.ClientToken != nil {
			if e := f.enis[id]; e != nil {
				ni := e.NetworkInterface
				return &ec2.CreateNetworkInterfaceOutput{NetworkInterface: &ni, ClientToken: in.ClientToken}, nil
			}
		}
		if err := f.young(append([]string{aws.ToString(in.SubnetId)}, in.Groups...)...); err != nil {
			return nil, err
		}
		s := f.subnets[aws.ToString(in.SubnetId)]
		if s == nil {
			return nil, APIError("InvalidSubnetID.NotFound", "The subnet ID '%s' does not exist", aws.ToString(in.SubnetId))
		}
		if err := checkTagSpecs(in.TagSpecifications, types.ResourceTypeNetworkInterface); err != nil {
			return nil, err
		}
		var groups []types.GroupIdentifier
		for _, g := range in.Groups {
			if f.sgs[g] == nil {
				return nil, APIError("InvalidGroup.NotFound", "The security group '%s' does not exist", g)
			}
			groups = append(groups, types.GroupIdentifier{GroupId: aws.String(g)})
		}
		if in.PrivateIpAddress != nil || len(in.PrivateIpAddresses) > 0 {
			return nil, APIError("UnknownParameter", "the fake does not choose addresses it is given")
		}
		id := f.id("eni")
		primary := f.allocIP(aws.ToString(s.SubnetId))
		e := &eni{NetworkInterface: types.NetworkInterface{
			NetworkInterfaceId: aws.String(id), SubnetId: s.SubnetId, VpcId: s.VpcId, AvailabilityZone: s.AvailabilityZone,
			PrivateIpAddress: aws.String(primary), Groups: groups, Description: in.Description,
			PrivateIpAddresses: []types.NetworkInterfacePrivateIpAddress{{PrivateIpAddress: aws.String(primary), Primary: aws.Bool(true)}},
			Status:             types.NetworkInterfaceStatusAvailable, TagSet: tags(in.TagSpecifications, types.ResourceTypeNetworkInterface),
		}}
		for i := int32(0); i < aws.ToInt32(in.SecondaryPrivateIpAddressCount); i++ {
			e.PrivateIpAddresses = append(e.PrivateIpAddresses, types.NetworkInterfacePrivateIpAddress{
				PrivateIpAddress: aws.String(f.allocIP(aws.ToString(s.SubnetId))), Primary: aws.Bool(false)})
		}
		f.enis[id] = e
		if in.ClientToken != nil {
			f.eniTokens[*in.ClientToken] = id
		}
		ni := e.NetworkInterface
		return &ec2.CreateNetworkInterfaceOutput{NetworkInterface: &ni, ClientToken: in.ClientToken}, nil
	})
}

func eniFields(e *eni) fieldFunc {
	return func(name string) ([]string, bool) {
		switch name {
		case "network-interface-id":
			return []string{aws.ToString(e.NetworkInterfaceId)}, true
		case "subnet-id":
			return []string{aws.ToString(e.SubnetId)}, true
		case "vpc-id":
			return []string{aws.ToString(e.VpcId)}, true
		case "status":
			return []string{string(e.Status)}, true
		case "addresses.private-ip-address", "private-ip-address":
			var v []string
			for _, a := range e.PrivateIpAddresses {
				v = append(v, aws.ToString(a.PrivateIpAddress))
			}
			return v, true
		case "attachment.instance-id":
			if e.Attachment == nil {
				return nil, true
			}
			return []string{aws.ToString(e.Attachment.InstanceId)}, true
		}
		return tagFields(e.TagSet, name)
	}
}

// DescribeNetworkInterfaces lists interfaces by ID or filters.
func (f *EC2) DescribeNetworkInterfaces(_ context.Context, in *ec2.DescribeNetworkInterfacesInput, _ ...func(*ec2.Options)) (*ec2.DescribeNetworkInterfacesOutput, error) {
	return op(f, "DescribeNetworkInterfaces", func() (*ec2.DescribeNetworkInterfacesOutput, error) {
		es, err := selectByIDs(f.enis, in.NetworkInterfaceIds, "InvalidNetworkInterfaceID.NotFound", eniFields, in.Filters)
		if err != nil {
			return nil, err
		}
		out := &ec2.DescribeNetworkInterfacesOutput{}
		for _, e := range es {
			out.NetworkInterfaces = append(out.NetworkInterfaces, e.NetworkInterface)
		}
		return out, nil
	})
}

// DeleteNetworkInterface fails with InvalidNetworkInterface.InUse while
// attached.
func (f *EC2) DeleteNetworkInterface(_ context.Context, in *ec2.DeleteNetworkInterfaceInput, _ ...func(*ec2.Options)) (*ec2.DeleteNetworkInterfaceOutput, error) {
	return op(f, "DeleteNetworkInterface", func() (*ec2.DeleteNetworkInterfaceOutput, error) {
		id := aws.ToString(in.NetworkInterfaceId)
		e := f.enis[id]
		if e == nil {
			return nil, APIError("InvalidNetworkInterfaceID.NotFound", "The networkInterface ID '%s' does not exist", id)
		}
		if e.Status == types.NetworkInterfaceStatusInUse {
			return nil, APIError("InvalidNetworkInterface.InUse", "Network interface '%s' is currently in use.", id)
		}
		f.deleteInterface(id)
		return &ec2.DeleteNetworkInterfaceOutput{}, nil
	})
}

// deleteInterface forgets an interface: its addresses, secondary ones
// included, go back to the subnet, and Elastic IPs mapped to them are
// disassociated, as EC2 does.
func (f *EC2) deleteInterface(id string) {
	for _, a := range f.addresses {
		if aws.ToString(a.NetworkInterfaceId) == id {
			a.NetworkInterfaceId, a.AssociationId, a.PrivateIpAddress = nil, nil, nil
		}
	}
	delete(f.enis, id)
}

// holder returns the interface that has ip among its addresses, if any.
func (f *EC2) holder(ip string) *eni {
	for _, e := range f.enis {
		for _, a := range e.PrivateIpAddresses {
			if aws.ToString(a.PrivateIpAddress) == ip {
				return e
			}
		}
	}
	return nil
}

// AssignPrivateIpAddresses adds secondary addresses to an interface: a
// count of new ones, or the addresses named. A named address another
// interface holds moves only with AllowReassignment, and only within its
// subnet; an Elastic IP mapped to it moves with it, as EC2 documents
// ("any Elastic IP address that is associated with the IP address is also
// moved"). EC2 remaps asynchronously; the fake at once.
func (f *EC2) AssignPrivateIpAddresses(_ context.Context, in *ec2.AssignPrivateIpAddressesInput, _ ...func(*ec2.Options)) (*ec2.AssignPrivateIpAddressesOutput, error) {
	return op(f, "AssignPrivateIpAddresses", func() (*ec2.AssignPrivateIpAddressesOutput, error) {
		id := aws.ToString(in.NetworkInterfaceId)
		if err := f.young(id); err != nil {
			return nil, err
		}
		e := f.enis[id]
		if e == nil {
			return nil, APIError("InvalidNetworkInterfaceID.NotFound", "The networkInterface ID '%s' does not exist", id)
		}
		if (len(in.PrivateIpAddresses) > 0) == (in.SecondaryPrivateIpAddressCount != nil) {
			return nil, APIError("InvalidParameterCombination", "Specify either private IP addresses or a secondary private IP address count")
		}
		out := &ec2.AssignPrivateIpAddressesOutput{NetworkInterfaceId: e.NetworkInterfaceId}
		e.PrivateIpAddresses = append([]types.NetworkInterfacePrivateIpAddress(nil), e.PrivateIpAddresses...)
		add := func(ip string) {
			e.PrivateIpAddresses = append(e.PrivateIpAddresses, types.NetworkInterfacePrivateIpAddress{PrivateIpAddress: aws.String(ip), Primary: aws.Bool(false)})
			out.AssignedPrivateIpAddresses = append(out.AssignedPrivateIpAddresses, types.AssignedPrivateIpAddress{PrivateIpAddress: aws.String(ip)})
		}
		for i := int32(0); i < aws.ToInt32(in.SecondaryPrivateIpAddressCount); i++ {
			add(f.allocIP(aws.ToString(e.SubnetId)))
		}
		_, cidr, _ := net.ParseCIDR(aws.ToString(f.subnets[aws.ToString(e.SubnetId)].CidrBlock))
		for _, ip := range in.PrivateIpAddresses {
			if parsed := net.ParseIP(ip); parsed == nil || !cidr.Contains(parsed) {
				return nil, APIError("InvalidParameterValue", "Address %s does not fall within the subnet's address range", ip)
			}
		}
		for _, ip := range in.PrivateIpAddresses {
			from := f.holder(ip)
			switch {
			case from == e:
				out.AssignedPrivateIpAddresses = append(out.AssignedPrivateIpAddresses, types.AssignedPrivateIpAddress{PrivateIpAddress: aws.String(ip)})
				continue
			case from != nil && aws.ToString(from.PrivateIpAddress) == ip:
				return nil, APIError("InvalidParameterValue", "Address %s is the primary address of %s and cannot move", ip, aws.ToString(from.NetworkInterfaceId))
			case from != nil && !aws.ToBool(in.AllowReassignment):
				return nil, APIError("InvalidParameterValue", "Address %s is in use", ip)
			case from != nil:
				// A new slice: answers already given share the old one.
				var kept []types.NetworkInterfacePrivateIpAddress
				for _, a := range from.PrivateIpAddresses {
					if aws.ToString(a.PrivateIpAddress) != ip {
						kept = append(kept, a)
					}
				}
				from.PrivateIpAddresses = kept
				for _, a := range f.addresses {
					if aws.ToString(a.NetworkInterfaceId) == aws.ToString(from.NetworkInterfaceId) && aws.ToString(a.PrivateIpAddress) == ip {
						a.NetworkInterfaceId = e.NetworkInterfaceId
					}
				}
			}
			add(ip)
		}
		return out, nil
	})
}

// CreateTags adds or replaces tags on network interfaces, the only
// resources the provider tags after creating them.
func (f *EC2) CreateTags(_ context.Context, in *ec2.CreateTagsInput, _ ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error) {
	return op(f, "CreateTags", func() (*ec2.CreateTagsOutput, error) {
		for _, id := range in.Resources {
			if err := f.young(id); err != nil {
				return nil, err
			}
			if f.enis[id] == nil {
				return nil, APIError("InvalidID", "The ID '%s' is not valid for tagging in this fake", id)
			}
		}
		for _, id := range in.Resources {
			e := f.enis[id]
			e.TagSet = append([]types.Tag(nil), e.TagSet...)
			for _, t := range in.Tags {
				replaced := false
				for i := range e.TagSet {
					if aws.ToString(e.TagSet[i].Key) == aws.ToString(t.Key) {
						e.TagSet[i].Value, replaced = t.Value, true
					}
				}
				if !replaced {
					e.TagSet = append(e.TagSet, t)
				}
			}
		}
		return &ec2.CreateTagsOutput{}, nil
	})
}

// --- Elastic IPs --------------------------------------------------------

// AllocateAddress allocates a VPC Elastic IP from 203.0.113.0/24.
func (f *EC2) AllocateAddress(_ context.Context, in *ec2.AllocateAddressInput, _ ...func(*ec2.Options)) (*ec2.AllocateAddressOutput, error) {
	return op(f, "AllocateAddress", func() (*ec2.AllocateAddressOutput, error) {
		if err := checkTagSpecs(in.TagSpecifications, types.ResourceTypeElasticIp); err != nil {
			return nil, err
		}
		f.publicIPs++
		id := f.id("eipalloc")
		ip := fmt.Sprintf("203.0.113.%d", f.publicIPs)
		f.addresses[id] = &types.Address{AllocationId: aws.String(id), PublicIp: aws.String(ip), Domain: types.DomainTypeVpc,
			Tags: tags(in.TagSpecifications, types.ResourceTypeElasticIp)}
		return &ec2.AllocateAddressOutput{AllocationId: aws.String(id), PublicIp: aws.String(ip), Domain: types.DomainTypeVpc}, nil
	})
}

func addressFields(a *types.Address) fieldFunc {
	return func(name string) ([]string, bool) {
		switch name {
		case "allocation-id":
			return []string{aws.ToString(a.AllocationId)}, true
		case "domain":
			return []string{string(a.Domain)}, true
		case "network-interface-id":
			return []string{aws.ToString(a.NetworkInterfaceId)}, true
		}
		return tagFields(a.Tags, name)
	}
}

// DescribeAddresses lists Elastic IPs by allocation ID or filters.
func (f *EC2) DescribeAddresses(_ context.Context, in *ec2.DescribeAddressesInput, _ ...func(*ec2.Options)) (*ec2.DescribeAddressesOutput, error) {
	return op(f, "DescribeAddresses", func() (*ec2.DescribeAddressesOutput, error) {
		as, err := selectByIDs(f.addresses, in.AllocationIds, "InvalidAllocationID.NotFound", addressFields, in.Filters)
		if err != nil {
			return nil, err
		}
		return &ec2.DescribeAddressesOutput{Addresses: as}, nil
	})
}

// AssociateAddress maps an Elastic IP to an address of a network
// interface. An address has one Elastic IP: one mapped to it before is
// unmapped and stays allocated, as EC2 documents.
func (f *EC2) AssociateAddress(_ context.Context, in *ec2.AssociateAddressInput, _ ...func(*ec2.Options)) (*ec2.AssociateAddressOutput, error) {
	return op(f, "AssociateAddress", func() (*ec2.AssociateAddressOutput, error) {
		if err := f.young(aws.ToString(in.AllocationId), aws.ToString(in.NetworkInterfaceId)); err != nil {
			return nil, err
		}
		a := f.addresses[aws.ToString(in.AllocationId)]
		if a == nil {
			return nil, APIError("InvalidAllocationID.NotFound", "The allocation ID '%s' does not exist", aws.ToString(in.AllocationId))
		}
		e := f.enis[aws.ToString(in.NetworkInterfaceId)]
		if e == nil {
			return nil, APIError("InvalidNetworkInterfaceID.NotFound", "The networkInterface ID '%s' does not exist", aws.ToString(in.NetworkInterfaceId))
		}
		attached := false
		for _, g := range f.igws {
			for _, at := range g.Attachments {
				attached = attached || aws.ToString(at.VpcId) == aws.ToString(e.VpcId)
			}
		}
		if !attached {
			return nil, APIError("Gateway.NotAttached", "Network %s is not attached to any internet gateway", aws.ToString(e.VpcId))
		}
		if a.AssociationId != nil && aws.ToString(a.NetworkInterfaceId) != aws.ToString(in.NetworkInterfaceId) && !aws.ToBool(in.AllowReassociation) {
			return nil, APIError("Resource.AlreadyAssociated", "resource %s is already associated", aws.ToString(a.AllocationId))
		}
		private := e.PrivateIpAddress
		if in.PrivateIpAddress != nil {
			private = nil
			for _, pa := range e.PrivateIpAddresses {
				if aws.ToString(pa.PrivateIpAddress) == aws.ToString(in.PrivateIpAddress) {
					private = pa.PrivateIpAddress
				}
			}
			if private == nil {
				return nil, APIError("InvalidParameterValue", "Address %s is not assigned to %s", aws.ToString(in.PrivateIpAddress), aws.ToString(e.NetworkInterfaceId))
			}
		}
		if a.AssociationId == nil || aws.ToString(a.NetworkInterfaceId) != aws.ToString(in.NetworkInterfaceId) || aws.ToString(a.PrivateIpAddress) != aws.ToString(private) {
			a.AssociationId = aws.String(f.id("eipassoc"))
		}
		for _, other := range f.addresses {
			if other != a && aws.ToString(other.NetworkInterfaceId) == aws.ToString(e.NetworkInterfaceId) && aws.ToString(other.PrivateIpAddress) == aws.ToString(private) {
				other.AssociationId, other.NetworkInterfaceId, other.PrivateIpAddress = nil, nil, nil
			}
		}
		a.NetworkInterfaceId, a.PrivateIpAddress = in.NetworkInterfaceId, private
		return &ec2.AssociateAddressOutput{AssociationId: a.AssociationId}, nil
	})
}

// DisassociateAddress unmaps an Elastic IP.
func (f *EC2) DisassociateAddress(_ context.Context, in *ec2.DisassociateAddressInput, _ ...func(*ec2.Options)) (*ec2.DisassociateAddressOutput, error) {
	return op(f, "DisassociateAddress", func() (*ec2.DisassociateAddressOutput, error) {
		for _, a := range f.addresses {
			if aws.ToString(a.AssociationId) == aws.ToString(in.AssociationId) {
				a.AssociationId, a.NetworkInterfaceId, a.PrivateIpAddress = nil, nil, nil
				return &ec2.DisassociateAddressOutput{}, nil
			}
		}
		return nil, APIError("InvalidAssociationID.NotFound", "The association ID '%s' does not exist", aws.ToString(in.AssociationId))
	})
}

// ReleaseAddress fails with InvalidIPAddress.InUse while associated.
func (f *EC2) ReleaseAddress(_ context.Context, in *ec2.ReleaseAddressInput, _ ...func(*ec2.Options)) (*ec2.ReleaseAddressOutput, error) {
	return op(f, "ReleaseAddress", func() (*ec2.ReleaseAddressOutput, error) {
		id := aws.ToString(in.AllocationId)
		a := f.addresses[id]
		if a == nil {
			return nil, APIError("InvalidAllocationID.NotFound", "The allocation ID '%s' does not exist", id)
		}
		if a.AssociationId != nil {
			return nil, APIError("InvalidIPAddress.InUse", "Address %s is in use.", aws.ToString(a.PublicIp))
		}
		delete(f.addresses, id)
		return &ec2.ReleaseAddressOutput{}, nil
	})
}

// Resources counts what exists, by kind, for "destroy leaves nothing".
// Defaults EC2 makes with a VPC (main route table, default group) count
// with their VPC. Terminated instances do not count.
func (f *EC2) Resources() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refresh()
	m := map[string]int{
		"vpc": len(f.vpcs), "subnet": len(f.subnets), "internet-gateway": len(f.igws),
		"network-interface": len(f.enis), "elastic-ip": len(f.addresses),
	}
	for _, rt := range f.rts {
		if !isMain(rt) {
			m["route-table"]++
		}
	}
	for _, g := range f.sgs {
		if aws.ToString(g.GroupName) != "default" {
			m["security-group"]++
		}
	}
	for _, in := range f.instances {
		if in.State.Name != types.InstanceStateNameTerminated {
			m["instance"]++
		}
	}
	for k, v := range m {
		if v == 0 {
			delete(m, k)
		}
	}
	return m
}
