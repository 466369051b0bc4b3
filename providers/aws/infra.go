package aws

import (
	"context"
	"fmt"
	"net"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/seedhq/seed/providers"
)

const (
	vpcCIDR = "10.0.0.0/16"
	// Subnets are /20s of the VPC, one per zone: 4091 addresses each, far
	// from the pod (10.244.0.0/16) and service (10.96.0.0/12) ranges.
	subnetBits = 4
	maxZones   = 3
	apiPort    = 6443
)

// EnsureInfrastructure finds or makes, in order: the VPC, internet gateway,
// subnets and route table (unless the spec names a VPC), the security
// groups, the control-plane endpoint (an address held by an interface of
// its own, mapped to a control plane, and an Elastic IP; see endpoint.go),
// the IAM roles and instance profiles, and the bucket. Everything made
// is tagged as the cluster's and found by those tags on the next call, so a
// second call creates nothing.
func (p *provider) EnsureInfrastructure(ctx context.Context) (providers.Infrastructure, error) {
	n := &network{vpcID: p.spec.VPCID}
	hasIGW := true
	if p.spec.VPCID == "" {
		vpc, err := p.ensureVPC(ctx)
		if err != nil {
			return providers.Infrastructure{}, err
		}
		n.vpcID = vpc
		igw, err := p.ensureInternetGateway(ctx, vpc)
		if err != nil {
			return providers.Infrastructure{}, err
		}
		zones, err := p.zones(ctx)
		if err != nil {
			return providers.Infrastructure{}, err
		}
		if n.subnets, err = p.ensureSubnets(ctx, vpc, zones); err != nil {
			return providers.Infrastructure{}, err
		}
		if err := p.ensureRouteTable(ctx, vpc, igw, n.subnets); err != nil {
			return providers.Infrastructure{}, err
		}
	} else {
		var err error
		if n.subnets, err = p.specSubnets(ctx); err != nil {
			return providers.Infrastructure{}, err
		}
		if hasIGW, err = p.vpcHasInternetGateway(ctx, n.vpcID); err != nil {
			return providers.Infrastructure{}, err
		}
	}
	var err error
	if n.nodesSG, n.apiSG, err = p.ensureSecurityGroups(ctx, n.vpcID); err != nil {
		return providers.Infrastructure{}, err
	}
	if n.ep, err = p.ensureEndpoint(ctx, n); err != nil {
		return providers.Infrastructure{}, err
	}
	publicIP := ""
	if hasIGW {
		if publicIP, err = p.ensureElasticIP(ctx, n.ep.mappedTo, n.ep.vip); err != nil {
			return providers.Infrastructure{}, err
		}
	} else {
		p.log.Info("No Elastic IP: the VPC has no internet gateway, so the API server is reachable only inside it", "vpc", n.vpcID)
	}
	if err := p.ensureIAM(ctx, n.vpcID); err != nil {
		return providers.Infrastructure{}, err
	}
	if _, err := p.ensureBucket(ctx); err != nil {
		return providers.Infrastructure{}, err
	}
	p.mu.Lock()
	p.net = n
	p.ensuredAt = p.clock.Now()
	p.mu.Unlock()

	internal := net.JoinHostPort(n.ep.address(), fmt.Sprint(apiPort))
	infra := providers.Infrastructure{
		ControlPlaneEndpoint: internal,
		ExternalEndpoint:     internal,
		CertSANs:             []string{n.ep.address()},
	}
	if publicIP != "" {
		infra.ExternalEndpoint = net.JoinHostPort(publicIP, fmt.Sprint(apiPort))
		infra.CertSANs = append(infra.CertSANs, publicIP)
	}
	return infra, nil
}

func (p *provider) ensureVPC(ctx context.Context) (string, error) {
	const op = "creating the VPC"
	out, err := p.ec2.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{Filters: p.ownedFilters()})
	if err != nil {
		return "", classify(op, err)
	}
	if len(out.Vpcs) > 0 {
		ids := make([]string, len(out.Vpcs))
		for i, v := range out.Vpcs {
			ids[i] = aws.ToString(v.VpcId)
		}
		sort.Strings(ids)
		if len(ids) > 1 {
			p.log.Info("Several VPCs are tagged for this cluster; using the first, destroy removes them all", "vpcs", ids)
		}
		return ids[0], nil
	}
	p.log.Info("Creating VPC", "cidr", vpcCIDR)
	res, err := p.ec2.CreateVpc(ctx, &ec2.CreateVpcInput{
		CidrBlock:         aws.String(vpcCIDR),
		TagSpecifications: []types.TagSpecification{tagSpec(types.ResourceTypeVpc, p.ownedTags(componentVPC))},
	})
	if err != nil {
		return "", classify(op, err)
	}
	return aws.ToString(res.Vpc.VpcId), nil
}

func (p *provider) ensureInternetGateway(ctx context.Context, vpc string) (string, error) {
	const op = "creating the internet gateway"
	out, err := p.ec2.DescribeInternetGateways(ctx, &ec2.DescribeInternetGatewaysInput{Filters: p.ownedFilters()})
	if err != nil {
		return "", classify(op, err)
	}
	var igw string
	attached := false
	if len(out.InternetGateways) > 0 {
		g := out.InternetGateways[0]
		igw = aws.ToString(g.InternetGatewayId)
		for _, a := range g.Attachments {
			attached = attached || aws.ToString(a.VpcId) == vpc
		}
	} else {
		p.log.Info("Creating internet gateway", "vpc", vpc)
		res, err := p.ec2.CreateInternetGateway(ctx, &ec2.CreateInternetGatewayInput{
			TagSpecifications: []types.TagSpecification{tagSpec(types.ResourceTypeInternetGateway, p.ownedTags(componentIGW))},
		})
		if err != nil {
			return "", classify(op, err)
		}
		igw = aws.ToString(res.InternetGateway.InternetGatewayId)
	}
	if !attached {
		_, err := afterCreate(ctx, p, func() (*ec2.AttachInternetGatewayOutput, error) {
			return p.ec2.AttachInternetGateway(ctx, &ec2.AttachInternetGatewayInput{InternetGatewayId: aws.String(igw), VpcId: aws.String(vpc)})
		})
		if err != nil && !isCode(err, "Resource.AlreadyAssociated") {
			return "", classify(op, err)
		}
	}
	return igw, nil
}

// zones are spec.availabilityZones, or the region's first three zones.
func (p *provider) zones(ctx context.Context) ([]string, error) {
	if len(p.spec.AvailabilityZones) > 0 {
		return p.spec.AvailabilityZones, nil
	}
	out, err := p.ec2.DescribeAvailabilityZones(ctx, &ec2.DescribeAvailabilityZonesInput{
		Filters: []types.Filter{filter("state", "available"), filter("zone-type", "availability-zone")},
	})
	if err != nil {
		return nil, classify("listing availability zones", err)
	}
	var zones []string
	for _, z := range out.AvailabilityZones {
		zones = append(zones, aws.ToString(z.ZoneName))
	}
	sort.Strings(zones)
	if len(zones) > maxZones {
		zones = zones[:maxZones]
	}
	if len(zones) == 0 {
		return nil, providers.NewError(providers.KindInvalid, "listing availability zones", fmt.Errorf("region %s has no available zone", p.spec.Region))
	}
	return zones, nil
}

func (p *provider) ensureSubnets(ctx context.Context, vpc string, zones []string) ([]subnet, error) {
	const op = "creating subnets"
	subs, err := p.describeSubnets(ctx, &ec2.DescribeSubnetsInput{
		Filters: p.ownedFilters(filter("tag:"+tagComponent, componentSubnet)),
	})
	if err != nil {
		return nil, classify(op, err)
	}
	byZone := map[string]types.Subnet{}
	used := map[string]bool{}
	for _, s := range subs {
		used[aws.ToString(s.CidrBlock)] = true
		if _, ok := byZone[aws.ToString(s.AvailabilityZone)]; !ok {
			byZone[aws.ToString(s.AvailabilityZone)] = s
		}
	}
	var out []subnet
	for _, z := range zones {
		s, ok := byZone[z]
		if !ok {
			cidr, err := freeSubnet(used)
			if err != nil {
				return nil, providers.NewError(providers.KindCapacity, op, err)
			}
			used[cidr] = true
			p.log.Info("Creating subnet", "zone", z, "cidr", cidr)
			res, err := afterCreate(ctx, p, func() (*ec2.CreateSubnetOutput, error) {
				return p.ec2.CreateSubnet(ctx, &ec2.CreateSubnetInput{
					VpcId:             aws.String(vpc),
					CidrBlock:         aws.String(cidr),
					AvailabilityZone:  aws.String(z),
					TagSpecifications: []types.TagSpecification{tagSpec(types.ResourceTypeSubnet, p.ownedTags(componentSubnet))},
				})
			})
			if err != nil {
				return nil, classify(op, err)
			}
			s = *res.Subnet
		}
		if !aws.ToBool(s.MapPublicIpOnLaunch) {
			// Machines reach package repositories through the internet
			// gateway: public addresses, no NAT gateway to pay for.
			if _, err := afterCreate(ctx, p, func() (*ec2.ModifySubnetAttributeOutput, error) {
				return p.ec2.ModifySubnetAttribute(ctx, &ec2.ModifySubnetAttributeInput{
					SubnetId:            s.SubnetId,
					MapPublicIpOnLaunch: &types.AttributeBooleanValue{Value: aws.Bool(true)},
				})
			}); err != nil {
				return nil, classify(op, err)
			}
		}
		out = append(out, subnet{id: aws.ToString(s.SubnetId), az: z})
	}
	sortSubnets(out)
	return out, nil
}

// freeSubnet returns the first /20 of the VPC range not in used.
func freeSubnet(used map[string]bool) (string, error) {
	_, base, _ := net.ParseCIDR(vpcCIDR)
	for i := 0; i < 1<<subnetBits; i++ {
		ip := make(net.IP, 4)
		copy(ip, base.IP.To4())
		ip[2] = byte(i << (8 - subnetBits))
		cidr := fmt.Sprintf("%s/%d", ip, 16+subnetBits)
		if !used[cidr] {
			return cidr, nil
		}
	}
	return "", fmt.Errorf("no free /%d left in %s", 16+subnetBits, vpcCIDR)
}

func (p *provider) ensureRouteTable(ctx context.Context, vpc, igw string, subnets []subnet) error {
	const op = "creating the route table"
	out, err := p.ec2.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{Filters: p.ownedFilters()})
	if err != nil {
		return classify(op, err)
	}
	var rt types.RouteTable
	if len(out.RouteTables) > 0 {
		rt = out.RouteTables[0]
	} else {
		p.log.Info("Creating route table", "vpc", vpc)
		res, err := afterCreate(ctx, p, func() (*ec2.CreateRouteTableOutput, error) {
			return p.ec2.CreateRouteTable(ctx, &ec2.CreateRouteTableInput{
				VpcId:             aws.String(vpc),
				ClientToken:       aws.String("seed-" + shortHash(p.cluster+"/route-table/"+vpc, 48)),
				TagSpecifications: []types.TagSpecification{tagSpec(types.ResourceTypeRouteTable, p.ownedTags(componentRouteTable))},
			})
		})
		if err != nil {
			return classify(op, err)
		}
		rt = *res.RouteTable
	}
	id := aws.ToString(rt.RouteTableId)
	hasDefault := false
	for _, r := range rt.Routes {
		hasDefault = hasDefault || (aws.ToString(r.DestinationCidrBlock) == "0.0.0.0/0" && aws.ToString(r.GatewayId) == igw)
	}
	if !hasDefault {
		_, err := afterCreate(ctx, p, func() (*ec2.CreateRouteOutput, error) {
			return p.ec2.CreateRoute(ctx, &ec2.CreateRouteInput{
				RouteTableId: aws.String(id), DestinationCidrBlock: aws.String("0.0.0.0/0"), GatewayId: aws.String(igw),
			})
		})
		if err != nil && !isCode(err, codeRouteAlreadyExists) {
			return classify(op, err)
		}
	}
	associated := map[string]bool{}
	for _, a := range rt.Associations {
		associated[aws.ToString(a.SubnetId)] = true
	}
	for _, s := range subnets {
		if associated[s.id] {
			continue
		}
		_, err := afterCreate(ctx, p, func() (*ec2.AssociateRouteTableOutput, error) {
			return p.ec2.AssociateRouteTable(ctx, &ec2.AssociateRouteTableInput{RouteTableId: aws.String(id), SubnetId: aws.String(s.id)})
		})
		if err != nil && !isCode(err, "Resource.AlreadyAssociated") {
			return classify(op, err)
		}
	}
	return nil
}

// specSubnets checks the subnets the spec names belong to its VPC.
func (p *provider) specSubnets(ctx context.Context) ([]subnet, error) {
	subs, err := p.describeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: p.spec.SubnetIDs})
	if err != nil {
		if isNotFound(err) {
			return nil, providers.NewError(providers.KindInvalid, "finding spec.provider.aws.subnetIDs", err)
		}
		return nil, classify("finding spec.provider.aws.subnetIDs", err)
	}
	var out []subnet
	for _, s := range subs {
		if aws.ToString(s.VpcId) != p.spec.VPCID {
			return nil, providers.NewError(providers.KindInvalid, "finding spec.provider.aws.subnetIDs",
				fmt.Errorf("subnet %s is in %s, not in spec.provider.aws.vpcID %s", aws.ToString(s.SubnetId), aws.ToString(s.VpcId), p.spec.VPCID))
		}
		out = append(out, subnet{id: aws.ToString(s.SubnetId), az: aws.ToString(s.AvailabilityZone)})
	}
	sortSubnets(out)
	return out, nil
}

func (p *provider) vpcHasInternetGateway(ctx context.Context, vpc string) (bool, error) {
	out, err := p.ec2.DescribeInternetGateways(ctx, &ec2.DescribeInternetGatewaysInput{
		Filters: []types.Filter{filter("attachment.vpc-id", vpc)},
	})
	if err != nil {
		return false, classify("finding the VPC's internet gateway", err)
	}
	return len(out.InternetGateways) > 0, nil
}

// ensureSecurityGroups makes the two groups and their ingress rules, and
// nothing more: all traffic between members of the nodes group (kubelet
// 10250, pod and overlay traffic included), and 6443 to the API server from
// the allowed CIDRs. Egress stays EC2's default (all).
func (p *provider) ensureSecurityGroups(ctx context.Context, vpc string) (nodes, api string, err error) {
	const op = "creating security groups"
	out, err := p.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{
		Filters: p.ownedFilters(filter("vpc-id", vpc)),
	})
	if err != nil {
		return "", "", classify(op, err)
	}
	found := map[string]types.SecurityGroup{}
	for _, g := range out.SecurityGroups {
		found[tagMap(g.Tags)[tagComponent]] = g
	}
	groups := map[string]string{}
	for _, c := range []string{componentNodes, componentAPIServer} {
		g, ok := found[c]
		if !ok {
			name := resourceName(p.cluster, c, 255)
			p.log.Info("Creating security group", "group", name, "vpc", vpc)
			res, err := p.ec2.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
				GroupName:         aws.String(name),
				Description:       aws.String("Seed cluster " + p.cluster + " " + c),
				VpcId:             aws.String(vpc),
				TagSpecifications: []types.TagSpecification{tagSpec(types.ResourceTypeSecurityGroup, p.ownedTags(c))},
			})
			if err != nil {
				return "", "", classify(op, err)
			}
			g = types.SecurityGroup{GroupId: res.GroupId}
		}
		groups[c] = aws.ToString(g.GroupId)
		found[c] = g
	}
	nodes, api = groups[componentNodes], groups[componentAPIServer]

	want := map[string][]types.IpPermission{
		nodes: {{IpProtocol: aws.String("-1"), UserIdGroupPairs: []types.UserIdGroupPair{{GroupId: aws.String(nodes)}}}},
	}
	for _, cidr := range p.apiCIDRs {
		want[api] = append(want[api], types.IpPermission{
			IpProtocol: aws.String("tcp"), FromPort: aws.Int32(apiPort), ToPort: aws.Int32(apiPort),
			IpRanges: []types.IpRange{{CidrIp: aws.String(cidr)}},
		})
	}
	for _, c := range []string{componentNodes, componentAPIServer} {
		g := found[c]
		id := aws.ToString(g.GroupId)
		var missing []types.IpPermission
		for _, w := range want[id] {
			if !hasPermission(g.IpPermissions, w) {
				missing = append(missing, w)
			}
		}
		if len(missing) == 0 {
			continue
		}
		_, err := afterCreate(ctx, p, func() (*ec2.AuthorizeSecurityGroupIngressOutput, error) {
			return p.ec2.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{
				GroupId:           aws.String(id),
				IpPermissions:     missing,
				TagSpecifications: []types.TagSpecification{tagSpec(types.ResourceTypeSecurityGroupRule, p.ownedTags(c))},
			})
		})
		if err != nil && !isCode(err, codeInvalidPermissionDuplicate) {
			return "", "", classify(op, err)
		}
	}
	return nodes, api, nil
}

// afterCreate makes a call about resources this run may have just created,
// retrying for up to a minute while EC2 answers Invalid...NotFound: its
// eventual consistency, right after a Create call.
func afterCreate[T any](ctx context.Context, p *provider, call func() (T, error)) (T, error) {
	delay := time.Second
	deadline := p.clock.Now().Add(time.Minute)
	for {
		out, err := call()
		if err == nil || !isNotFound(err) || p.clock.Now().After(deadline) {
			return out, err
		}
		p.log.V(1).Info("Waiting for EC2 to know a resource it just created", "code", errorCode(err), "after", delay)
		if serr := p.clock.Sleep(ctx, delay); serr != nil {
			return out, err
		}
		delay = min(delay*2, 10*time.Second)
	}
}

func hasPermission(have []types.IpPermission, w types.IpPermission) bool {
	for _, h := range have {
		if aws.ToString(h.IpProtocol) != aws.ToString(w.IpProtocol) ||
			aws.ToInt32(h.FromPort) != aws.ToInt32(w.FromPort) || aws.ToInt32(h.ToPort) != aws.ToInt32(w.ToPort) {
			continue
		}
		for _, wp := range w.UserIdGroupPairs {
			for _, hp := range h.UserIdGroupPairs {
				if aws.ToString(hp.GroupId) == aws.ToString(wp.GroupId) {
					return true
				}
			}
		}
		for _, wr := range w.IpRanges {
			for _, hr := range h.IpRanges {
				if aws.ToString(hr.CidrIp) == aws.ToString(wr.CidrIp) {
					return true
				}
			}
		}
	}
	return false
}

// ensureElasticIP allocates the cluster's Elastic IP and maps it to the
// endpoint address on the interface that holds it now, returning the
// public IP. Once mapped, it follows the address when AssignPrivateIpAddresses
// moves it. privateIP empty means the interface's primary address (the
// endpoint of a cluster made before the VIP).
func (p *provider) ensureElasticIP(ctx context.Context, eni, privateIP string) (string, error) {
	const op = "creating the control-plane Elastic IP"
	out, err := p.ec2.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{Filters: p.ownedFilters()})
	if err != nil {
		return "", classify(op, err)
	}
	var addr types.Address
	if len(out.Addresses) > 0 {
		addr = out.Addresses[0]
	} else {
		p.log.Info("Allocating Elastic IP for the control-plane endpoint")
		res, err := p.ec2.AllocateAddress(ctx, &ec2.AllocateAddressInput{
			Domain:            types.DomainTypeVpc,
			TagSpecifications: []types.TagSpecification{tagSpec(types.ResourceTypeElasticIp, p.ownedTags(componentEndpoint))},
		})
		if err != nil {
			return "", classify(op, err)
		}
		addr = types.Address{AllocationId: res.AllocationId, PublicIp: res.PublicIp}
	}
	if aws.ToString(addr.NetworkInterfaceId) != eni || (privateIP != "" && aws.ToString(addr.PrivateIpAddress) != privateIP) {
		in := &ec2.AssociateAddressInput{
			AllocationId:       addr.AllocationId,
			NetworkInterfaceId: aws.String(eni),
			AllowReassociation: aws.Bool(true),
		}
		if privateIP != "" {
			in.PrivateIpAddress = aws.String(privateIP)
		}
		if _, err := afterCreate(ctx, p, func() (*ec2.AssociateAddressOutput, error) { return p.ec2.AssociateAddress(ctx, in) }); err != nil {
			return "", classify(op, err)
		}
	}
	return aws.ToString(addr.PublicIp), nil
}
