package aws

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/seedhq/seed/providers"
)

const (
	// terminateTimeout bounds the wait for instances to terminate; EC2
	// usually takes one to two minutes.
	terminateTimeout = 10 * time.Minute
	// dependencyTimeout bounds retries of a deletion that waits on another
	// (a security group on an interface EC2 is still releasing).
	dependencyTimeout = 5 * time.Minute
)

// DestroyInfrastructure removes everything the cluster owns, found by its
// tags, in dependency order: instances (and waits for them to terminate),
// the Elastic IP, the endpoint interface, the internet gateway, subnets,
// the route table, security groups, the VPC, instance profiles and roles,
// and the bucket. It carries on past failures and returns them all at the
// end; run it again to finish. Nothing found is success.
func (p *provider) DestroyInfrastructure(ctx context.Context) error {
	var errs []error
	add := func(what string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
		}
	}
	// The bucket name needs the account; find it while the credentials
	// still work for everything.
	bucket, bucketErr := p.bucketName(ctx)

	add("instances", p.terminateAll(ctx))

	addrs, err := p.ec2.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{Filters: p.ownedFilters()})
	add("listing Elastic IPs", err)
	if err == nil {
		for _, a := range addrs.Addresses {
			id := aws.ToString(a.AllocationId)
			if a.AssociationId != nil {
				_, err := p.ec2.DisassociateAddress(ctx, &ec2.DisassociateAddressInput{AssociationId: a.AssociationId})
				if err != nil && !isNotFound(err) {
					add("Elastic IP "+id, err)
					continue
				}
			}
			p.log.Info("Releasing Elastic IP", "allocation", id)
			add("Elastic IP "+id, p.retryDependent(ctx, func() error {
				_, err := p.ec2.ReleaseAddress(ctx, &ec2.ReleaseAddressInput{AllocationId: a.AllocationId})
				return err
			}))
		}
	}

	enis, err := p.ec2.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{Filters: p.ownedFilters()})
	add("listing network interfaces", err)
	if err == nil {
		for _, ni := range enis.NetworkInterfaces {
			id := aws.ToString(ni.NetworkInterfaceId)
			p.log.Info("Deleting network interface", "networkInterface", id)
			add("network interface "+id, p.retryDependent(ctx, func() error {
				_, err := p.ec2.DeleteNetworkInterface(ctx, &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: ni.NetworkInterfaceId})
				return err
			}))
		}
	}

	igws, err := p.ec2.DescribeInternetGateways(ctx, &ec2.DescribeInternetGatewaysInput{Filters: p.ownedFilters()})
	add("listing internet gateways", err)
	if err == nil {
		for _, g := range igws.InternetGateways {
			id := aws.ToString(g.InternetGatewayId)
			p.log.Info("Deleting internet gateway", "internetGateway", id)
			add("internet gateway "+id, p.retryDependent(ctx, func() error {
				for _, a := range g.Attachments {
					_, err := p.ec2.DetachInternetGateway(ctx, &ec2.DetachInternetGatewayInput{InternetGatewayId: g.InternetGatewayId, VpcId: a.VpcId})
					if err != nil && !isCode(err, "Gateway.NotAttached") && !isNotFound(err) {
						return err
					}
				}
				_, err := p.ec2.DeleteInternetGateway(ctx, &ec2.DeleteInternetGatewayInput{InternetGatewayId: g.InternetGatewayId})
				return err
			}))
		}
	}

	subs, err := p.describeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: p.ownedFilters()})
	add("listing subnets", err)
	for _, s := range subs {
		id := aws.ToString(s.SubnetId)
		p.log.Info("Deleting subnet", "subnet", id)
		add("subnet "+id, p.retryDependent(ctx, func() error {
			_, err := p.ec2.DeleteSubnet(ctx, &ec2.DeleteSubnetInput{SubnetId: s.SubnetId})
			return err
		}))
	}

	rts, err := p.ec2.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{Filters: p.ownedFilters()})
	add("listing route tables", err)
	if err == nil {
		for _, rt := range rts.RouteTables {
			id := aws.ToString(rt.RouteTableId)
			p.log.Info("Deleting route table", "routeTable", id)
			add("route table "+id, p.retryDependent(ctx, func() error {
				_, err := p.ec2.DeleteRouteTable(ctx, &ec2.DeleteRouteTableInput{RouteTableId: rt.RouteTableId})
				return err
			}))
		}
	}

	sgs, err := p.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: p.ownedFilters()})
	add("listing security groups", err)
	if err == nil {
		for _, g := range sgs.SecurityGroups {
			id := aws.ToString(g.GroupId)
			p.log.Info("Deleting security group", "securityGroup", id)
			add("security group "+id, p.retryDependent(ctx, func() error {
				_, err := p.ec2.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: g.GroupId})
				return err
			}))
		}
	}

	vpcs, err := p.ec2.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{Filters: p.ownedFilters()})
	add("listing VPCs", err)
	if err == nil {
		for _, v := range vpcs.Vpcs {
			id := aws.ToString(v.VpcId)
			p.log.Info("Deleting VPC", "vpc", id)
			add("VPC "+id, p.retryDependent(ctx, func() error {
				_, err := p.ec2.DeleteVpc(ctx, &ec2.DeleteVpcInput{VpcId: v.VpcId})
				return err
			}))
		}
	}

	errs = append(errs, p.deleteIAM(ctx)...)

	if bucketErr != nil {
		add("bucket", bucketErr)
	} else {
		p.log.Info("Deleting bucket and its objects", "bucket", bucket)
		add("bucket "+bucket, p.emptyAndDeleteBucket(ctx, bucket))
	}

	p.mu.Lock()
	p.net = nil
	p.bucket = ""
	p.imageLists = map[string]*imageList{}
	p.wroteLocked()
	p.mu.Unlock()

	if len(errs) > 0 {
		return providers.NewError(kindOfAll(errs), "destroying cluster "+p.cluster,
			fmt.Errorf("%d resources could not be removed; run destroy again: %w", len(errs), errors.Join(errs...)))
	}
	return nil
}

// kindOfAll is the kind of a set of failures: transient unless one of them
// can never succeed as is.
func kindOfAll(errs []error) providers.ErrorKind {
	k := providers.KindTransient
	for _, e := range errs {
		switch kindOf(e) {
		case providers.KindInvalid:
			return providers.KindInvalid
		case providers.KindThrottled:
			k = providers.KindThrottled
		}
	}
	return k
}

// terminateAll terminates every instance of the cluster and waits until
// EC2 reports them terminated.
func (p *provider) terminateAll(ctx context.Context) error {
	in := func() *ec2.DescribeInstancesInput {
		return &ec2.DescribeInstancesInput{Filters: p.ownedFilters(filter("instance-state-name", liveStates...))}
	}
	insts, err := p.describeInstances(ctx, in())
	if err != nil {
		return err
	}
	var ids []string
	for _, i := range insts {
		if i.State != nil && i.State.Name != types.InstanceStateNameShuttingDown {
			ids = append(ids, aws.ToString(i.InstanceId))
		}
	}
	for start := 0; start < len(ids); start += 1000 {
		batch := ids[start:min(start+1000, len(ids))]
		p.log.Info("Terminating instances", "instances", batch)
		if _, err := p.ec2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: batch}); err != nil && !isNotFound(err) {
			return err
		}
	}
	if len(insts) == 0 {
		return nil
	}
	deadline := p.clock.Now().Add(terminateTimeout)
	delay := 5 * time.Second
	for {
		if err := p.clock.Sleep(ctx, delay); err != nil {
			return err
		}
		left, err := p.describeInstances(ctx, in())
		if err != nil {
			return err
		}
		if len(left) == 0 {
			return nil
		}
		if p.clock.Now().After(deadline) {
			return fmt.Errorf("%d instances still not terminated after %s", len(left), terminateTimeout)
		}
		delay = min(delay*2, 30*time.Second)
	}
}

// retryDependent runs a deletion until it succeeds, the thing is gone, or
// dependencyTimeout passes while EC2 still reports a dependency (an
// interface being released, a mapped public address).
func (p *provider) retryDependent(ctx context.Context, del func() error) error {
	deadline := p.clock.Now().Add(dependencyTimeout)
	delay := 2 * time.Second
	for {
		err := del()
		if err == nil || isNotFound(err) {
			return nil
		}
		if kindOf(err) != providers.KindTransient || p.clock.Now().After(deadline) {
			return err
		}
		if err := p.clock.Sleep(ctx, delay); err != nil {
			return err
		}
		delay = min(delay*2, 30*time.Second)
	}
}
