package fake

import (
	"context"
	"encoding/base64"
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// RunInstances launches between MinCount and MaxCount instances, as many
// as the zone's capacity allows. A ClientToken seen before returns the
// earlier reservation, with current states, or IdempotentParameterMismatch
// when other parameters differ; a failed call does not use up its token.
func (f *EC2) RunInstances(_ context.Context, in *ec2.RunInstancesInput, _ ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	before, after := f.begin("RunInstances")
	if before != nil {
		return nil, before
	}
	out, err := f.runInstances(in)
	if err != nil {
		return nil, err
	}
	if after != nil {
		return nil, after
	}
	return out, nil
}

func (f *EC2) runInstances(in *ec2.RunInstancesInput) (*ec2.RunInstancesOutput, error) {
	minC, maxC := aws.ToInt32(in.MinCount), aws.ToInt32(in.MaxCount)
	if minC < 1 || maxC < minC {
		return nil, APIError("InvalidParameterValue", "MinCount and MaxCount must be 1 <= MinCount <= MaxCount")
	}
	if len(aws.ToString(in.ClientToken)) > 64 {
		return nil, APIError("InvalidParameterValue", "ClientToken is longer than 64 characters")
	}
	if ud := aws.ToString(in.UserData); ud != "" {
		raw, err := base64.StdEncoding.DecodeString(ud)
		if err != nil {
			return nil, APIError("InvalidParameterValue", "Invalid BASE64 encoding of user data.")
		}
		if len(raw) > 16*1024 {
			return nil, APIError("InvalidParameterValue", "User data is limited to 16384 bytes")
		}
	}
	if err := checkTagSpecs(in.TagSpecifications, types.ResourceTypeInstance, types.ResourceTypeVolume, types.ResourceTypeNetworkInterface); err != nil {
		return nil, err
	}
	var nis []string
	for _, n := range in.NetworkInterfaces {
		nis = append(nis, fmt.Sprintf("%d/%s", aws.ToInt32(n.DeviceIndex), aws.ToString(n.NetworkInterfaceId)))
	}
	var tagParts []string
	for _, s := range in.TagSpecifications {
		for _, t := range s.Tags {
			tagParts = append(tagParts, string(s.ResourceType)+"/"+aws.ToString(t.Key)+"="+aws.ToString(t.Value))
		}
	}
	params := hashParams(aws.ToString(in.ImageId), string(in.InstanceType), fmt.Sprint(minC, maxC),
		aws.ToString(in.SubnetId), strings.Join(in.SecurityGroupIds, ","), strings.Join(nis, ","),
		aws.ToString(in.UserData), strings.Join(tagParts, ","))
	token := aws.ToString(in.ClientToken)
	if rec, ok := f.tokens[token]; ok && token != "" {
		if rec.params != params {
			return nil, APIError("IdempotentParameterMismatch", "Arguments on this idempotent request are inconsistent with arguments used in previous request(s).")
		}
		return f.reservation(rec.reservation, rec.ids), nil
	}

	if !f.imageExists(aws.ToString(in.ImageId)) {
		return nil, APIError("InvalidAMIID.NotFound", "The image id '[%s]' does not exist", aws.ToString(in.ImageId))
	}
	if _, ok := f.types[string(in.InstanceType)]; !ok {
		return nil, APIError("InvalidParameterValue", "Invalid value '%s' for InstanceType.", in.InstanceType)
	}
	if k := aws.ToString(in.KeyName); k != "" && !f.keys[k] {
		return nil, APIError("InvalidKeyPair.NotFound", "The key pair '%s' does not exist", k)
	}
	if p := in.IamInstanceProfile; p != nil && f.ProfileExists != nil && !f.ProfileExists(aws.ToString(p.Name)) {
		return nil, APIError("InvalidParameterValue", "Value (%s) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name", aws.ToString(p.Name))
	}
	if m := in.MetadataOptions; m != nil && m.HttpPutResponseHopLimit != nil && (*m.HttpPutResponseHopLimit < 1 || *m.HttpPutResponseHopLimit > 64) {
		return nil, APIError("InvalidParameterValue", "HttpPutResponseHopLimit must be between 1 and 64")
	}

	// Where: a subnet, or an existing interface that brings its own.
	var sub *types.Subnet
	var attach *eni
	groups := in.SecurityGroupIds
	switch {
	case len(in.NetworkInterfaces) > 0:
		if in.SubnetId != nil || len(in.SecurityGroupIds) > 0 {
			return nil, APIError("InvalidParameterCombination", "Network interfaces and an instance-level subnet ID or security groups may not be specified on the same request")
		}
		id := aws.ToString(in.NetworkInterfaces[0].NetworkInterfaceId)
		attach = f.enis[id]
		if attach == nil {
			return nil, APIError("InvalidNetworkInterfaceID.NotFound", "The networkInterface ID '%s' does not exist", id)
		}
		if attach.Status != types.NetworkInterfaceStatusAvailable {
			return nil, APIError("InvalidNetworkInterface.InUse", "Interface: [%s] in use.", id)
		}
		if maxC > 1 {
			return nil, APIError("InvalidParameterCombination", "An existing network interface can be attached to one instance only")
		}
		sub = f.subnets[aws.ToString(attach.SubnetId)]
		groups = nil
		for _, g := range attach.Groups {
			groups = append(groups, aws.ToString(g.GroupId))
		}
	case in.SubnetId != nil:
		sub = f.subnets[aws.ToString(in.SubnetId)]
		if sub == nil {
			return nil, APIError("InvalidSubnetID.NotFound", "The subnet ID '%s' does not exist", aws.ToString(in.SubnetId))
		}
	default:
		return nil, APIError("VPCIdNotSpecified", "No default VPC for this user.")
	}
	for _, g := range groups {
		sg := f.sgs[g]
		if sg == nil {
			return nil, APIError("InvalidGroup.NotFound", "The security group '%s' does not exist", g)
		}
		if aws.ToString(sg.VpcId) != aws.ToString(sub.VpcId) {
			return nil, APIError("InvalidParameter", "Security group %s and subnet %s belong to different networks.", g, aws.ToString(sub.SubnetId))
		}
	}

	zone := aws.ToString(sub.AvailabilityZone)
	if f.unsupported[zone+"/"+string(in.InstanceType)] {
		return nil, APIError("Unsupported", "Your requested instance type (%s) is not supported in your requested Availability Zone (%s).", in.InstanceType, zone)
	}
	n := maxC
	if c, limited := f.capacity[zone]; limited {
		if int32(c) < minC {
			return nil, ServerError("InsufficientInstanceCapacity", "We currently do not have sufficient %s capacity in the Availability Zone you requested (%s).", in.InstanceType, zone)
		}
		n = min(n, int32(c))
		f.capacity[zone] = c - int(n)
	}

	now := f.now()
	resID := f.id("r")
	var ids []string
	for i := int32(0); i < n; i++ {
		id := f.id("i")
		ip := ""
		var niID string
		if attach != nil {
			ip = aws.ToString(attach.PrivateIpAddress)
			niID = aws.ToString(attach.NetworkInterfaceId)
			attach.Status = types.NetworkInterfaceStatusInUse
			attach.Attachment = &types.NetworkInterfaceAttachment{InstanceId: aws.String(id), DeviceIndex: aws.Int32(0)}
		} else {
			ip = f.allocIP(aws.ToString(sub.SubnetId))
			niID = f.id("eni")
			var sgs []types.GroupIdentifier
			for _, g := range groups {
				sgs = append(sgs, types.GroupIdentifier{GroupId: aws.String(g)})
			}
			f.enis[niID] = &eni{deleteOnTermination: true, NetworkInterface: types.NetworkInterface{
				NetworkInterfaceId: aws.String(niID), SubnetId: sub.SubnetId, VpcId: sub.VpcId,
				AvailabilityZone: sub.AvailabilityZone, PrivateIpAddress: aws.String(ip), Groups: sgs,
				PrivateIpAddresses: []types.NetworkInterfacePrivateIpAddress{{PrivateIpAddress: aws.String(ip), Primary: aws.Bool(true)}},
				Status:             types.NetworkInterfaceStatusInUse,
				Attachment:         &types.NetworkInterfaceAttachment{InstanceId: aws.String(id), DeviceIndex: aws.Int32(0)},
				TagSet:             tags(in.TagSpecifications, types.ResourceTypeNetworkInterface),
			}}
		}
		var sgs []types.GroupIdentifier
		for _, g := range groups {
			sgs = append(sgs, types.GroupIdentifier{GroupId: aws.String(g)})
		}
		inst := &instance{created: now, userData: aws.ToString(in.UserData), reservation: resID, Instance: types.Instance{
			InstanceId:       aws.String(id),
			ImageId:          in.ImageId,
			InstanceType:     in.InstanceType,
			AmiLaunchIndex:   aws.Int32(i),
			ClientToken:      in.ClientToken,
			LaunchTime:       aws.Time(now),
			Placement:        &types.Placement{AvailabilityZone: aws.String(zone)},
			PrivateIpAddress: aws.String(ip),
			SubnetId:         sub.SubnetId,
			VpcId:            sub.VpcId,
			SecurityGroups:   sgs,
			State:            state(types.InstanceStateNamePending),
			KeyName:          in.KeyName,
			Tags:             tags(in.TagSpecifications, types.ResourceTypeInstance),
			NetworkInterfaces: []types.InstanceNetworkInterface{{
				NetworkInterfaceId: aws.String(niID), PrivateIpAddress: aws.String(ip),
				Attachment: &types.InstanceNetworkInterfaceAttachment{DeviceIndex: aws.Int32(0)},
			}},
		}}
		if p := in.IamInstanceProfile; p != nil {
			inst.IamInstanceProfile = &types.IamInstanceProfile{Arn: aws.String("arn:aws:iam::" + f.account + ":instance-profile/" + aws.ToString(p.Name))}
		}
		if m := in.MetadataOptions; m != nil {
			inst.MetadataOptions = &types.InstanceMetadataOptionsResponse{
				HttpTokens: m.HttpTokens, HttpPutResponseHopLimit: m.HttpPutResponseHopLimit,
				HttpEndpoint: m.HttpEndpoint, State: types.InstanceMetadataOptionsStateApplied,
			}
		}
		f.instances[id] = inst
		f.order = append(f.order, id)
		ids = append(ids, id)
	}
	if token != "" {
		f.tokens[token] = &tokenRecord{params: params, reservation: resID, ids: ids}
	}
	return f.reservation(resID, ids), nil
}

func (f *EC2) reservation(resID string, ids []string) *ec2.RunInstancesOutput {
	out := &ec2.RunInstancesOutput{ReservationId: aws.String(resID), OwnerId: aws.String(f.account)}
	for _, id := range ids {
		if in := f.instances[id]; in != nil {
			out.Instances = append(out.Instances, in.Instance)
		}
	}
	return out
}

func (f *EC2) imageExists(id string) bool {
	for _, im := range f.images {
		if aws.ToString(im.ImageId) == id {
			return true
		}
	}
	return false
}

func instanceFields(in *instance) fieldFunc {
	return func(name string) ([]string, bool) {
		switch name {
		case "instance-state-name":
			return []string{string(in.State.Name)}, true
		case "instance-id":
			return []string{aws.ToString(in.InstanceId)}, true
		case "client-token":
			return []string{aws.ToString(in.ClientToken)}, true
		case "availability-zone":
			return []string{aws.ToString(in.Placement.AvailabilityZone)}, true
		case "vpc-id":
			return []string{aws.ToString(in.VpcId)}, true
		case "subnet-id":
			return []string{aws.ToString(in.SubnetId)}, true
		case "instance-type":
			return []string{string(in.InstanceType)}, true
		case "network-interface.network-interface-id":
			var v []string
			for _, n := range in.NetworkInterfaces {
				v = append(v, aws.ToString(n.NetworkInterfaceId))
			}
			return v, true
		}
		return tagFields(in.Tags, name)
	}
}

// DescribeInstances lists instances by ID or filters, in reservations,
// MaxResults (5 to 1000) at a time. New instances stay invisible for
// VisibilityDelay: by ID they are InvalidInstanceID.NotFound.
func (f *EC2) DescribeInstances(_ context.Context, in *ec2.DescribeInstancesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	before, after := f.begin("DescribeInstances")
	if before != nil {
		return nil, before
	}
	if len(in.InstanceIds) > 0 && in.MaxResults != nil {
		return nil, APIError("InvalidParameterCombination", "The parameter instancesSet cannot be used with the parameter maxResults")
	}
	if err := checkMaxResults(in.MaxResults, 5, 1000); err != nil {
		return nil, err
	}
	dummy := &instance{Instance: types.Instance{State: state(types.InstanceStateNamePending), Placement: &types.Placement{}}}
	if err := checkFilters(in.Filters, instanceFields(dummy)); err != nil {
		return nil, err
	}
	var selected []*instance
	if len(in.InstanceIds) > 0 {
		var missing []string
		for _, id := range in.InstanceIds {
			inst := f.instances[id]
			if inst == nil || !f.visible(inst) {
				missing = append(missing, id)
				continue
			}
			selected = append(selected, inst)
		}
		if len(missing) > 0 {
			return nil, APIError("InvalidInstanceID.NotFound", "The instance IDs '%s' do not exist", strings.Join(missing, ", "))
		}
	} else {
		for _, id := range f.order {
			if inst := f.instances[id]; inst != nil && f.visible(inst) {
				selected = append(selected, inst)
			}
		}
	}
	var matched []*instance
	for _, inst := range selected {
		ok, err := match(in.Filters, instanceFields(inst))
		if err != nil {
			return nil, err
		}
		if ok {
			matched = append(matched, inst)
		}
	}
	pg, next, err := page(matched, in.MaxResults, in.NextToken)
	if err != nil {
		return nil, err
	}
	out := &ec2.DescribeInstancesOutput{NextToken: next}
	byRes := map[string]int{}
	for _, inst := range pg {
		i, ok := byRes[inst.reservation]
		if !ok {
			i = len(out.Reservations)
			byRes[inst.reservation] = i
			out.Reservations = append(out.Reservations, types.Reservation{ReservationId: aws.String(inst.reservation), OwnerId: aws.String(f.account)})
		}
		out.Reservations[i].Instances = append(out.Reservations[i].Instances, inst.Instance)
	}
	if after != nil {
		return nil, after
	}
	return out, nil
}

// TerminateInstances moves instances to shutting-down; they are terminated
// TerminateDelay later. Unknown (or not yet visible) IDs fail the call.
func (f *EC2) TerminateInstances(_ context.Context, in *ec2.TerminateInstancesInput, _ ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	before, after := f.begin("TerminateInstances")
	if before != nil {
		return nil, before
	}
	var missing []string
	for _, id := range in.InstanceIds {
		if inst := f.instances[id]; inst == nil || !f.visible(inst) {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		return nil, APIError("InvalidInstanceID.NotFound", "The instance IDs '%s' do not exist", strings.Join(missing, ", "))
	}
	out := &ec2.TerminateInstancesOutput{}
	for _, id := range in.InstanceIds {
		inst := f.instances[id]
		prev := inst.State
		if inst.State.Name != types.InstanceStateNameShuttingDown && inst.State.Name != types.InstanceStateNameTerminated {
			inst.State = state(types.InstanceStateNameShuttingDown)
			inst.terminatedAt = f.now()
		}
		out.TerminatingInstances = append(out.TerminatingInstances, types.InstanceStateChange{
			InstanceId: aws.String(id), PreviousState: prev, CurrentState: inst.State,
		})
	}
	if after != nil {
		return nil, after
	}
	return out, nil
}

// UserData returns the base64 user data an instance was launched with.
func (f *EC2) UserData(instanceID string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if in := f.instances[instanceID]; in != nil {
		return in.userData
	}
	return ""
}

// Instances returns every instance not yet forgotten, visible or not,
// terminated included, in launch order.
func (f *EC2) Instances() []types.Instance {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refresh()
	var out []types.Instance
	for _, id := range f.order {
		if in := f.instances[id]; in != nil {
			out = append(out, in.Instance)
		}
	}
	return out
}

// LiveInstances returns the instances that are not shutting down or
// terminated.
func (f *EC2) LiveInstances() []types.Instance {
	var out []types.Instance
	for _, in := range f.Instances() {
		if in.State.Name != types.InstanceStateNameShuttingDown && in.State.Name != types.InstanceStateNameTerminated {
			out = append(out, in)
		}
	}
	return out
}

// --- preflight --------------------------------------------------------

// DescribeAvailabilityZones lists the region's zones.
func (f *EC2) DescribeAvailabilityZones(_ context.Context, in *ec2.DescribeAvailabilityZonesInput, _ ...func(*ec2.Options)) (*ec2.DescribeAvailabilityZonesOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if before, _ := f.begin("DescribeAvailabilityZones"); before != nil {
		return nil, before
	}
	out := &ec2.DescribeAvailabilityZonesOutput{}
	for i, z := range f.zones {
		az := types.AvailabilityZone{
			ZoneName: aws.String(z), ZoneId: aws.String(fmt.Sprintf("use1-az%d", i+1)), RegionName: aws.String(f.region),
			State: types.AvailabilityZoneStateAvailable, ZoneType: aws.String("availability-zone"),
		}
		ok, err := match(in.Filters, func(name string) ([]string, bool) {
			switch name {
			case "state":
				return []string{"available"}, true
			case "zone-type":
				return []string{"availability-zone"}, true
			case "zone-name":
				return []string{z}, true
			}
			return nil, false
		})
		if err != nil {
			return nil, err
		}
		if ok {
			out.AvailabilityZones = append(out.AvailabilityZones, az)
		}
	}
	return out, nil
}

// DescribeInstanceTypes describes the named types; one unknown name fails
// the whole call with InvalidInstanceType, as EC2 does.
func (f *EC2) DescribeInstanceTypes(_ context.Context, in *ec2.DescribeInstanceTypesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstanceTypesOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if before, _ := f.begin("DescribeInstanceTypes"); before != nil {
		return nil, before
	}
	out := &ec2.DescribeInstanceTypesOutput{}
	names := in.InstanceTypes
	if len(names) == 0 {
		for _, k := range sortedKeys(f.types) {
			names = append(names, types.InstanceType(k))
		}
	}
	var bad []string
	for _, n := range names {
		t, ok := f.types[string(n)]
		if !ok {
			bad = append(bad, string(n))
			continue
		}
		out.InstanceTypes = append(out.InstanceTypes, t)
	}
	if len(bad) > 0 {
		return nil, APIError("InvalidInstanceType", "The following supplied instance types do not exist: [%s]", strings.Join(bad, ", "))
	}
	return out, nil
}

// DescribeImages finds images by ID, owner and filters.
func (f *EC2) DescribeImages(_ context.Context, in *ec2.DescribeImagesInput, _ ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if before, _ := f.begin("DescribeImages"); before != nil {
		return nil, before
	}
	var out []types.Image
	for _, id := range in.ImageIds {
		if !strings.HasPrefix(id, "ami-") {
			return nil, APIError("InvalidAMIID.Malformed", "Invalid id: \"%s\"", id)
		}
		if !f.imageExists(id) {
			return nil, APIError("InvalidAMIID.NotFound", "The image id '[%s]' does not exist", id)
		}
	}
	for _, im := range f.images {
		if len(in.ImageIds) > 0 && !contains(in.ImageIds, aws.ToString(im.ImageId)) {
			continue
		}
		if len(in.Owners) > 0 && !contains(in.Owners, aws.ToString(im.OwnerId)) {
			continue
		}
		ok, err := match(in.Filters, func(name string) ([]string, bool) {
			switch name {
			case "name":
				return []string{aws.ToString(im.Name)}, true
			case "architecture":
				return []string{string(im.Architecture)}, true
			case "state":
				return []string{string(im.State)}, true
			case "root-device-type":
				return []string{string(im.RootDeviceType)}, true
			case "virtualization-type":
				return []string{string(im.VirtualizationType)}, true
			case "owner-id":
				return []string{aws.ToString(im.OwnerId)}, true
			}
			return nil, false
		})
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, im)
		}
	}
	sort.Slice(out, func(i, j int) bool { return aws.ToString(out[i].ImageId) < aws.ToString(out[j].ImageId) })
	pg, next, err := page(out, in.MaxResults, in.NextToken)
	if err != nil {
		return nil, err
	}
	return &ec2.DescribeImagesOutput{Images: pg, NextToken: next}, nil
}

// DescribeKeyPairs finds key pairs by name.
func (f *EC2) DescribeKeyPairs(_ context.Context, in *ec2.DescribeKeyPairsInput, _ ...func(*ec2.Options)) (*ec2.DescribeKeyPairsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if before, _ := f.begin("DescribeKeyPairs"); before != nil {
		return nil, before
	}
	out := &ec2.DescribeKeyPairsOutput{}
	for _, k := range in.KeyNames {
		if !f.keys[k] {
			return nil, APIError("InvalidKeyPair.NotFound", "The key pair '%s' does not exist", k)
		}
		out.KeyPairs = append(out.KeyPairs, types.KeyPairInfo{KeyName: aws.String(k)})
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
