package aws

import (
	"context"
	"fmt"
	"net"
	"slices"
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
// second call creates nothing, and callers at once end with one of each
// (races.go).
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
	list := func() ([]string, error) {
		out, err := p.ec2.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{Filters: p.ownedFilters()})
		if err != nil {
			return nil, err
		}
		var ids []string
		for _, v := range out.Vpcs {
			ids = append(ids, aws.ToString(v.VpcId))
		}
		return ids, nil
	}
	ids, err := list()
	if err != nil {
		return "", classify(op, err)
	}
	if len(ids) > 0 {
		if len(ids) > 1 {
			sort.Strings(ids)
			p.log.Info("Several VPCs are tagged for this cluster; using the lowest ID, as every caller does; destroy removes them all", "vpcs", ids)
		}
		return survivor(ids), nil
	}
	p.log.Info("Creating VPC", "cidr", vpcCIDR)
	res, err := p.ec2.CreateVpc(ctx, &ec2.CreateVpcInput{
		CidrBlock:         aws.String(vpcCIDR),
		TagSpecifications: []types.TagSpecification{tagSpec(types.ResourceTypeVpc, p.ownedTags(componentVPC))},
	})
	if err != nil {
		return "", classify(op, err)
	}
	mine := aws.ToString(res.Vpc.VpcId)
	vpc, err := p.keepOne(ctx, "VPC", "vpc", mine, func() (string, error) {
		ids, err := list()
		return survivor(append(ids, mine)), err
	}, func() error {
		_, err := p.ec2.DeleteVpc(ctx, &ec2.DeleteVpcInput{VpcId: aws.String(mine)})
		return err
	})
	return vpc, classify(op, err)
}

// ensureInternetGateway makes sure one of the cluster's internet gateways
// is attached to vpc: the one attached already, else one made before and
// left detached (by a run that died, or a caller about to attach it), else
// a new one. A VPC takes one gateway, so when two callers attach at once,
// one fails; it uses the other's and deletes its own if it made it.
func (p *provider) ensureInternetGateway(ctx context.Context, vpc string) (string, error) {
	const op = "creating the internet gateway"
	// mine is the gateway this call made, in any attempt: deleted if
	// another is attached instead.
	var mine string
	keep := func(winner string) string {
		if mine != "" && mine != winner {
			p.dropLost(ctx, "internet gateway", "internetGateway", mine, winner, func() error {
				_, err := p.ec2.DeleteInternetGateway(ctx, &ec2.DeleteInternetGatewayInput{InternetGatewayId: aws.String(mine)})
				return err
			})
		}
		return winner
	}
	return retryRaces(ctx, p, op, func() (string, error) {
		out, err := p.ec2.DescribeInternetGateways(ctx, &ec2.DescribeInternetGatewaysInput{Filters: p.ownedFilters()})
		if err != nil {
			return "", classify(op, err)
		}
		var detached []string
		for _, g := range out.InternetGateways {
			if attachedTo(g, vpc) {
				return keep(aws.ToString(g.InternetGatewayId)), nil
			}
			if len(g.Attachments) == 0 {
				detached = append(detached, aws.ToString(g.InternetGatewayId))
			}
		}
		var igw string
		if len(detached) > 0 {
			igw = survivor(detached)
			p.log.Info("Attaching an internet gateway of the cluster found detached", "internetGateway", igw, "vpc", vpc)
		} else {
			p.log.Info("Creating internet gateway", "vpc", vpc)
			res, err := p.ec2.CreateInternetGateway(ctx, &ec2.CreateInternetGatewayInput{
				TagSpecifications: []types.TagSpecification{tagSpec(types.ResourceTypeInternetGateway, p.ownedTags(componentIGW))},
			})
			if err != nil {
				return "", classify(op, err)
			}
			igw = aws.ToString(res.InternetGateway.InternetGatewayId)
			mine = igw
		}
		_, err = afterCreate(ctx, p, func() (*ec2.AttachInternetGatewayOutput, error) {
			return p.ec2.AttachInternetGateway(ctx, &ec2.AttachInternetGatewayInput{InternetGatewayId: aws.String(igw), VpcId: aws.String(vpc)})
		})
		if err == nil {
			return igw, nil
		}
		// Resource.AlreadyAssociated: the gateway is attached, maybe here
		// by another caller. InvalidParameterValue: the VPC has another.
		// Which, the VPC's attachment says.
		attached, derr := p.ec2.DescribeInternetGateways(ctx, &ec2.DescribeInternetGatewaysInput{
			Filters: p.ownedFilters(filter("attachment.vpc-id", vpc)),
		})
		if derr != nil {
			return "", classify(op, derr)
		}
		if len(attached.InternetGateways) == 0 {
			return "", raced(op, err, codeResourceAlreadyAssociated, codeInvalidParameterValue)
		}
		return keep(aws.ToString(attached.InternetGateways[0].InternetGatewayId)), nil
	})
}

func attachedTo(g types.InternetGateway, vpc string) bool {
	for _, a := range g.Attachments {
		if aws.ToString(a.VpcId) == vpc {
			return true
		}
	}
	return false
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

// ensureSubnets makes one subnet per zone, each a free /20 of the VPC. Two
// callers at once pick the same CIDR for the same zone, so the second
// create fails with InvalidSubnet.Conflict and that caller describes
// again; should they pick different CIDRs, both subnets are made, every
// caller keeps the zone's lowest ID, and the caller that made the other
// deletes it.
func (p *provider) ensureSubnets(ctx context.Context, vpc string, zones []string) ([]subnet, error) {
	const op = "creating subnets"
	// mine are the subnets this call made, by zone, in any attempt.
	mine := map[string]string{}
	return retryRaces(ctx, p, op, func() ([]subnet, error) {
		// All of the VPC's subnets, the cluster's or not: a CIDR in use is
		// in use whoever made it.
		all, err := p.describeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []types.Filter{filter("vpc-id", vpc)}})
		if err != nil {
			return nil, classify(op, err)
		}
		used := map[string]bool{}
		byZone := map[string][]types.Subnet{}
		for _, s := range all {
			used[aws.ToString(s.CidrBlock)] = true
			if t := tagMap(s.Tags); p.owns(s.Tags) && t[tagComponent] == componentSubnet {
				byZone[aws.ToString(s.AvailabilityZone)] = append(byZone[aws.ToString(s.AvailabilityZone)], s)
			}
		}
		for _, z := range zones {
			if len(byZone[z]) > 0 {
				continue
			}
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
				return nil, raced(op, err, codeInvalidSubnetConflict)
			}
			byZone[z] = []types.Subnet{*res.Subnet}
			mine[z] = aws.ToString(res.Subnet.SubnetId)
		}
		if len(mine) > 0 {
			if err := p.keepSubnets(ctx, vpc, byZone, mine); err != nil {
				return nil, classify(op, err)
			}
		}
		var out []subnet
		for _, z := range zones {
			sortByID(byZone[z])
			s := byZone[z][0]
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
	})
}

// keepSubnets, after this call made the subnets mine (by zone), describes
// the cluster's subnets in vpc again, adds them to byZone, and deletes
// each of mine that is not its zone's lowest ID, the one every caller
// keeps, and forgets it. A describe may not list mine yet; byZone has
// them.
func (p *provider) keepSubnets(ctx context.Context, vpc string, byZone map[string][]types.Subnet, mine map[string]string) error {
	subs, err := p.describeSubnets(ctx, &ec2.DescribeSubnetsInput{
		Filters: p.ownedFilters(filter("tag:"+tagComponent, componentSubnet), filter("vpc-id", vpc)),
	})
	if err != nil {
		return err
	}
	for _, s := range subs {
		z := aws.ToString(s.AvailabilityZone)
		if !slices.ContainsFunc(byZone[z], func(o types.Subnet) bool { return aws.ToString(o.SubnetId) == aws.ToString(s.SubnetId) }) {
			byZone[z] = append(byZone[z], s)
		}
	}
	for z, id := range mine {
		if len(byZone[z]) == 0 {
			continue
		}
		sortByID(byZone[z])
		if keep := aws.ToString(byZone[z][0].SubnetId); id != keep {
			p.dropLost(ctx, "subnet in "+z, "subnet", id, keep, func() error {
				_, err := p.ec2.DeleteSubnet(ctx, &ec2.DeleteSubnetInput{SubnetId: aws.String(id)})
				return err
			})
			delete(mine, z)
		}
	}
	return nil
}

func sortByID(ss []types.Subnet) {
	sort.Slice(ss, func(i, j int) bool { return aws.ToString(ss[i].SubnetId) < aws.ToString(ss[j].SubnetId) })
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

// ensureRouteTable makes the VPC's route table, its default route through
// igw and its associations with subnets. The ClientToken, which depends
// on the VPC only, makes callers at once make one table; a route or an
// association another caller made first fails the write, and the step
// starts again from a fresh describe, which shows it.
func (p *provider) ensureRouteTable(ctx context.Context, vpc, igw string, subnets []subnet) error {
	const op = "creating the route table"
	_, err := retryRaces(ctx, p, op, func() (struct{}, error) {
		out, err := p.ec2.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{Filters: p.ownedFilters(filter("vpc-id", vpc))})
		if err != nil {
			return struct{}{}, classify(op, err)
		}
		var rt types.RouteTable
		if len(out.RouteTables) > 0 {
			rt = out.RouteTables[0]
			for _, t := range out.RouteTables[1:] {
				if aws.ToString(t.RouteTableId) < aws.ToString(rt.RouteTableId) {
					rt = t
				}
			}
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
				return struct{}{}, classify(op, err)
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
			if err != nil {
				return struct{}{}, raced(op, err, codeRouteAlreadyExists)
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
			if err != nil {
				return struct{}{}, raced(op, err, codeResourceAlreadyAssociated)
			}
		}
		return struct{}{}, nil
	})
	return err
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
// the allowed CIDRs. Egress stays EC2's default (all). A group's name is
// unique in its VPC and a rule in its group, so a caller that creates
// either after another did fails, and describes again.
func (p *provider) ensureSecurityGroups(ctx context.Context, vpc string) (nodes, api string, err error) {
	const op = "creating security groups"
	ids, err := retryRaces(ctx, p, op, func() ([2]string, error) {
		out, err := p.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{
			Filters: p.ownedFilters(filter("vpc-id", vpc)),
		})
		if err != nil {
			return [2]string{}, classify(op, err)
		}
		found := map[string]types.SecurityGroup{}
		for _, g := range out.SecurityGroups {
			c := tagMap(g.Tags)[tagComponent]
			if have, ok := found[c]; !ok || aws.ToString(g.GroupId) < aws.ToString(have.GroupId) {
				found[c] = g
			}
		}
		for _, c := range []string{componentNodes, componentAPIServer} {
			if _, ok := found[c]; ok {
				continue
			}
			name := resourceName(p.cluster, c, 255)
			p.log.Info("Creating security group", "group", name, "vpc", vpc)
			res, err := p.ec2.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
				GroupName:         aws.String(name),
				Description:       aws.String("Seed cluster " + p.cluster + " " + c),
				VpcId:             aws.String(vpc),
				TagSpecifications: []types.TagSpecification{tagSpec(types.ResourceTypeSecurityGroup, p.ownedTags(c))},
			})
			if err != nil {
				return [2]string{}, raced(op, err, codeInvalidGroupDuplicate)
			}
			found[c] = types.SecurityGroup{GroupId: res.GroupId}
		}
		nodes, api := aws.ToString(found[componentNodes].GroupId), aws.ToString(found[componentAPIServer].GroupId)

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
			// One rule there already fails the call, the missing ones with
			// it: describe again and add what is still missing.
			if err != nil {
				return [2]string{}, raced(op, err, codeInvalidPermissionDuplicate)
			}
		}
		return [2]string{nodes, api}, nil
	})
	return ids[0], ids[1], err
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
	list := func() ([]types.Address, error) {
		out, err := p.ec2.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{Filters: p.ownedFilters()})
		if err != nil {
			return nil, err
		}
		return out.Addresses, nil
	}
	as, err := list()
	if err != nil {
		return "", classify(op, err)
	}
	var addr types.Address
	if len(as) > 0 {
		addr = keptAddress(as)
	} else {
		p.log.Info("Allocating Elastic IP for the control-plane endpoint")
		res, err := p.ec2.AllocateAddress(ctx, &ec2.AllocateAddressInput{
			Domain:            types.DomainTypeVpc,
			TagSpecifications: []types.TagSpecification{tagSpec(types.ResourceTypeElasticIp, p.ownedTags(componentEndpoint))},
		})
		if err != nil {
			return "", classify(op, err)
		}
		mine := types.Address{AllocationId: res.AllocationId, PublicIp: res.PublicIp}
		_, err = p.keepOne(ctx, "Elastic IP", "allocation", aws.ToString(mine.AllocationId), func() (string, error) {
			as, err := list()
			if !slices.ContainsFunc(as, func(a types.Address) bool { return aws.ToString(a.AllocationId) == aws.ToString(mine.AllocationId) }) {
				as = append(as, mine)
			}
			addr = keptAddress(as)
			return aws.ToString(addr.AllocationId), err
		}, func() error {
			_, err := p.ec2.ReleaseAddress(ctx, &ec2.ReleaseAddressInput{AllocationId: mine.AllocationId})
			return err
		})
		if err != nil {
			return "", classify(op, err)
		}
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
