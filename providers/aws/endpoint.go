package aws

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/seedhq/seed/providers"
)

// The control-plane endpoint is a secondary private address (the VIP) in
// the first subnet. EC2 keeps a secondary address allocated only while
// some interface has it, and frees it with the interface, which for a
// launched instance's own interface is at termination. So the VIP has a
// holder: an interface the provider makes for it, never attached, that
// has it whenever no control plane does. Who has it, and when it moves:
//
//   - EnsureInfrastructure makes the holder with one secondary address,
//     tags the holder with that address (seed.dev/endpoint-ip), and maps
//     the Elastic IP to it. If the address is on no interface at all (its
//     control plane was terminated outside Seed), it puts it back on the
//     holder.
//   - CreateMachine of a control plane gives it the VIP when no control
//     plane has it (it is on the holder): the first control plane, or the
//     next one after the last was deleted.
//   - MoveEndpoint gives it to a named control plane, taking it from
//     whichever interface has it (AllowReassignment). The agent calls it
//     once the new control plane is healthy, before it deletes the old.
//   - DeleteMachine of the control plane that has it puts it back on the
//     holder before terminating the instance, so it is never freed.
//
// An Elastic IP mapped to a secondary address moves with it (EC2's
// AssignPrivateIpAddresses documentation), so the external endpoint
// follows the VIP without a call. The remap is asynchronous; the machine
// that gains the VIP adds it to its interface when IMDS lists it among
// its local-ipv4s, and the one that loses it removes it (userdata.go).

// endpoint is the control plane's address and the interface that holds it.
type endpoint struct {
	// holder is the interface made for the endpoint, in subnet.
	holder string
	subnet subnet
	// vip is the endpoint address; empty when legacy.
	vip string
	// legacy: a cluster made before the VIP, whose endpoint is the
	// holder's primary address and whose control plane is launched onto
	// the holder as device 0. That address cannot move.
	legacy bool
	// primaryIP is the holder's primary address.
	primaryIP string
	// mappedTo is the interface the VIP is on, as EnsureInfrastructure
	// last saw it; only EnsureInfrastructure sets it.
	mappedTo string
}

// address is what ControlPlaneEndpoint names.
func (e *endpoint) address() string {
	if e.legacy {
		return e.primaryIP
	}
	return e.vip
}

// endpointOf reads an endpoint interface. untagged reports a VIP found as
// the holder's secondary address but not yet in its tag: a crash between
// making the holder and tagging it, before the address ever moved.
func endpointOf(ni types.NetworkInterface) (e *endpoint, untagged bool) {
	e = &endpoint{
		holder:    aws.ToString(ni.NetworkInterfaceId),
		subnet:    subnet{id: aws.ToString(ni.SubnetId), az: aws.ToString(ni.AvailabilityZone)},
		primaryIP: aws.ToString(ni.PrivateIpAddress),
		vip:       tagMap(ni.TagSet)[tagEndpointIP],
	}
	if e.vip != "" {
		return e, false
	}
	for _, a := range ni.PrivateIpAddresses {
		if !aws.ToBool(a.Primary) && aws.ToString(a.PrivateIpAddress) != e.primaryIP {
			e.vip = aws.ToString(a.PrivateIpAddress)
			return e, true
		}
	}
	e.legacy = true
	return e, false
}

// describeEndpoint finds the endpoint interface; of several, the lowest
// ID, which every caller picks alike.
func (p *provider) describeEndpoint(ctx context.Context) (*types.NetworkInterface, error) {
	out, err := p.ec2.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{
		Filters: p.ownedFilters(filter("tag:"+tagComponent, componentEndpoint)),
	})
	if err != nil || len(out.NetworkInterfaces) == 0 {
		return nil, err
	}
	ni := out.NetworkInterfaces[0]
	for _, o := range out.NetworkInterfaces[1:] {
		if aws.ToString(o.NetworkInterfaceId) < aws.ToString(ni.NetworkInterfaceId) {
			ni = o
		}
	}
	return &ni, nil
}

// ensureEndpoint finds or makes the holder and its VIP, makes sure some
// interface has the VIP, and reports where it is. Two callers at once make
// one holder: the ClientToken, which depends on the cluster and the first
// subnet, names it, and callers agree on the first subnet once
// ensureSubnets has settled.
func (p *provider) ensureEndpoint(ctx context.Context, n *network) (*endpoint, error) {
	const op = "creating the control-plane endpoint"
	ni, err := p.describeEndpoint(ctx)
	if err != nil {
		return nil, classify(op, err)
	}
	if ni == nil {
		if len(n.subnets) == 0 {
			return nil, providers.NewError(providers.KindInvalid, op, errors.New("no subnet"))
		}
		s := n.subnets[0]
		p.log.Info("Creating the control-plane endpoint address on an interface that holds it", "subnet", s.id, "zone", s.az)
		res, err := afterCreate(ctx, p, func() (*ec2.CreateNetworkInterfaceOutput, error) {
			return p.ec2.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{
				SubnetId:                       aws.String(s.id),
				Groups:                         []string{n.nodesSG, n.apiSG},
				SecondaryPrivateIpAddressCount: aws.Int32(1),
				Description:                    aws.String("Seed cluster " + p.cluster + " control-plane endpoint holder; never attached"),
				ClientToken:                    aws.String("seed-" + shortHash(p.cluster+"/endpoint-vip/"+s.id, 48)),
				TagSpecifications:              []types.TagSpecification{tagSpec(types.ResourceTypeNetworkInterface, p.ownedTags(componentEndpoint))},
			})
		})
		if err != nil {
			return nil, classify(op, err)
		}
		ni = res.NetworkInterface
	}
	ep, untagged := endpointOf(*ni)
	if ep.legacy {
		// Made by an earlier Seed: its address is the primary one of the
		// interface the control plane runs on, which cannot move. Keep it,
		// so the cluster keeps working; MoveEndpoint refuses.
		p.log.Info("Control-plane endpoint is the primary address of an interface attached to the control plane, as clusters made before the movable endpoint have; it cannot move to a replacement control plane (see doc.go, Existing clusters)",
			"networkInterface", ep.holder, "address", ep.primaryIP)
		ep.mappedTo = ep.holder
		return ep, nil
	}
	if untagged {
		if _, err := afterCreate(ctx, p, func() (*ec2.CreateTagsOutput, error) {
			return p.ec2.CreateTags(ctx, &ec2.CreateTagsInput{
				Resources: []string{ep.holder},
				Tags:      []types.Tag{{Key: aws.String(tagEndpointIP), Value: aws.String(ep.vip)}},
			})
		}); err != nil {
			return nil, classify(op, err)
		}
	}
	where, owned, err := p.locateVIP(ctx, ep)
	if err != nil {
		return nil, classify(op, err)
	}
	switch {
	case where == "":
		// Nothing has it: the interface that had it was deleted (its
		// instance terminated outside Seed). Take it back while it is free.
		p.log.Info("Putting the control-plane endpoint address back on its holder: no interface has it", "address", ep.vip, "networkInterface", ep.holder)
		if err := p.assignVIP(ctx, ep, ep.holder, false); err != nil {
			return nil, classify(op, fmt.Errorf("the endpoint address %s was freed and could not be taken back: %w", ep.vip, err))
		}
		where = ep.holder
	case !owned:
		return nil, providers.NewError(providers.KindInvalid, op,
			fmt.Errorf("the endpoint address %s is on interface %s, which this cluster does not own", ep.vip, where))
	}
	ep.mappedTo = where
	return ep, nil
}

// endpoint returns the cluster's endpoint, finding it the first time: the
// agent, in its own process, never ran EnsureInfrastructure.
func (p *provider) endpoint(ctx context.Context, n *network) (*endpoint, error) {
	p.mu.Lock()
	e := n.ep
	p.mu.Unlock()
	if e != nil {
		return e, nil
	}
	const op = "finding the control-plane endpoint"
	ni, err := p.describeEndpoint(ctx)
	if err != nil {
		return nil, classify(op, err)
	}
	if ni == nil {
		return nil, providers.NewError(providers.KindNotFound, op,
			errors.New("no endpoint interface is tagged for this cluster: run EnsureInfrastructure (seed up) first"))
	}
	e, _ = endpointOf(*ni)
	p.mu.Lock()
	defer p.mu.Unlock()
	if n.ep == nil {
		n.ep = e
	}
	return n.ep, nil
}

// locateVIP returns the interface the VIP is on now, "" when none, and
// whether the cluster owns that interface.
func (p *provider) locateVIP(ctx context.Context, ep *endpoint) (eni string, owned bool, err error) {
	out, err := p.ec2.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{
		Filters: []types.Filter{filter("subnet-id", ep.subnet.id), filter("addresses.private-ip-address", ep.vip)},
	})
	if err != nil {
		return "", false, err
	}
	for _, ni := range out.NetworkInterfaces {
		tags := tagMap(ni.TagSet)
		return aws.ToString(ni.NetworkInterfaceId), tags[ownershipKey(p.cluster)] == ownedValue && tags[providers.LabelCluster] == p.cluster, nil
	}
	return "", false, nil
}

// assignVIP maps the VIP to eni, taking it from the interface that has it
// when reassign. The Elastic IP mapped to it follows.
func (p *provider) assignVIP(ctx context.Context, ep *endpoint, eni string, reassign bool) error {
	_, err := afterCreate(ctx, p, func() (*ec2.AssignPrivateIpAddressesOutput, error) {
		return p.ec2.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{
			NetworkInterfaceId: aws.String(eni),
			PrivateIpAddresses: []string{ep.vip},
			AllowReassignment:  aws.Bool(reassign),
		})
	})
	return err
}

// controlPlaneRecord finds a live control-plane machine by name, asking
// EC2 again before it counts as missing.
func (p *provider) controlPlaneRecord(ctx context.Context, name string) (record, bool, error) {
	for _, fresh := range []bool{false, true} {
		recs, err := p.list(ctx, fresh)
		if err != nil {
			return record{}, false, err
		}
		for _, r := range recs {
			if r.m.Name == name && r.m.Role == providers.RoleControlPlane && r.m.Phase != providers.PhaseDeleting && r.m.Phase != providers.PhaseFailed && r.eni != "" {
				return r, true, nil
			}
		}
	}
	return record{}, false, nil
}

// MoveEndpoint implements providers.Provider: it maps the VIP to the
// named control plane's primary interface, taking it from the interface
// that has it (AllowReassignment). The Elastic IP follows. EC2 remaps
// asynchronously: for a few seconds after the call returns, the old
// machine may still receive the endpoint's traffic, and the new one adds
// the address to its interface only once IMDS lists it (userdata.go).
func (p *provider) MoveEndpoint(ctx context.Context, machine string) error {
	op := "moving the control-plane endpoint to machine " + machine
	n, err := p.network(ctx)
	if err != nil {
		return err
	}
	ep, err := p.endpoint(ctx, n)
	if err != nil {
		return err
	}
	if ep.legacy {
		return providers.NewError(providers.KindInvalid, op,
			fmt.Errorf("the endpoint %s is the primary address of interface %s, which EC2 cannot move: this cluster predates the movable endpoint (see the AWS provider's doc, Existing clusters)", ep.primaryIP, ep.holder))
	}
	r, ok, err := p.controlPlaneRecord(ctx, machine)
	if err != nil {
		return err
	}
	if !ok {
		return providers.NewError(providers.KindNotFound, op, errors.New("no live control-plane machine of that name"))
	}
	where, _, err := p.locateVIP(ctx, ep)
	if err != nil {
		return classify(op, err)
	}
	if where == r.eni {
		return nil
	}
	p.log.Info("Moving the control-plane endpoint", "machine", machine, "address", ep.vip, "from", where, "to", r.eni)
	if err := p.assignVIP(ctx, ep, r.eni, true); err != nil {
		return classify(op, err)
	}
	return nil
}

// claimEndpoint gives the VIP to a control plane just created when no
// control plane has it: it is on the holder, or on nothing.
func (p *provider) claimEndpoint(ctx context.Context, ep *endpoint, machine string) error {
	op := "giving the control-plane endpoint to machine " + machine
	where, _, err := p.locateVIP(ctx, ep)
	if err != nil {
		return classify(op, err)
	}
	if where != "" && where != ep.holder {
		p.log.V(1).Info("Leaving the control-plane endpoint where it is: a control plane has it, and MoveEndpoint hands it over", "machine", machine, "networkInterface", where)
		return nil
	}
	r, ok, err := p.controlPlaneRecord(ctx, machine)
	if err != nil {
		return err
	}
	if !ok {
		return providers.NewError(providers.KindTransient, op, errors.New("the machine's interface is not known yet"))
	}
	p.log.Info("Giving the control-plane endpoint to a new control plane: no control plane has it", "machine", machine, "address", ep.vip, "networkInterface", r.eni)
	if err := p.assignVIP(ctx, ep, r.eni, true); err != nil {
		return classify(op, err)
	}
	return nil
}

// parkEndpoint puts the VIP back on its holder when one of enis (a
// control plane about to be terminated) has it, so that terminating the
// instance does not free it.
func (p *provider) parkEndpoint(ctx context.Context, machine string, enis []string) error {
	op := "keeping the control-plane endpoint of machine " + machine
	n, err := p.network(ctx)
	if err != nil {
		return err
	}
	ep, err := p.endpoint(ctx, n)
	if err != nil {
		return err
	}
	if ep.legacy {
		return nil
	}
	where, _, err := p.locateVIP(ctx, ep)
	if err != nil {
		return classify(op, err)
	}
	for _, e := range enis {
		if e == where {
			p.log.Info("Parking the control-plane endpoint on its holder before terminating the control plane that has it; the next control plane created, or MoveEndpoint, takes it",
				"machine", machine, "address", ep.vip, "networkInterface", ep.holder)
			if err := p.assignVIP(ctx, ep, ep.holder, true); err != nil {
				return classify(op, err)
			}
			return nil
		}
	}
	return nil
}
