package ec2server

import (
	"fmt"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/seedhq/seed/providers/aws/fake"
)

type handler func(r *http.Request, f *fake.EC2, in *form) (any, error)

// Response bodies; writeXML replaces the root element with
// <ActionResponse>.
type (
	rReturn struct {
		Return bool `xml:"return"`
	}
	rReservation       xReservation
	rDescribeInstances struct {
		Reservations []xReservation `xml:"reservationSet>item"`
		NextToken    string         `xml:"nextToken,omitempty"`
	}
	rTerminate struct {
		Changes []xStateChange `xml:"instancesSet>item"`
	}
	rZones struct {
		Zones []xZone `xml:"availabilityZoneInfo>item"`
	}
	rInstanceTypes struct {
		Types     []xInstanceType `xml:"instanceTypeSet>item"`
		NextToken string          `xml:"nextToken,omitempty"`
	}
	rImages struct {
		Images    []xImage `xml:"imagesSet>item"`
		NextToken string   `xml:"nextToken,omitempty"`
	}
	rKeyPairs struct {
		Keys []xKeyPair `xml:"keySet>item"`
	}
	rVpc struct {
		Vpc xVpc `xml:"vpc"`
	}
	rVpcs struct {
		Vpcs []xVpc `xml:"vpcSet>item"`
	}
	rSubnet struct {
		Subnet xSubnet `xml:"subnet"`
	}
	rSubnets struct {
		Subnets   []xSubnet `xml:"subnetSet>item"`
		NextToken string    `xml:"nextToken,omitempty"`
	}
	rIGW struct {
		IGW xIGW `xml:"internetGateway"`
	}
	rIGWs struct {
		IGWs []xIGW `xml:"internetGatewaySet>item"`
	}
	rRouteTable struct {
		RouteTable  xRouteTable `xml:"routeTable"`
		ClientToken string      `xml:"clientToken,omitempty"`
	}
	rRouteTables struct {
		RouteTables []xRouteTable `xml:"routeTableSet>item"`
	}
	rAssociation struct {
		AssociationID string `xml:"associationId"`
	}
	rGroupID struct {
		GroupID string `xml:"groupId"`
	}
	rGroups struct {
		Groups []xSecurityGroup `xml:"securityGroupInfo>item"`
	}
	rENI struct {
		ENI         xENI   `xml:"networkInterface"`
		ClientToken string `xml:"clientToken,omitempty"`
	}
	rENIs struct {
		ENIs []xENI `xml:"networkInterfaceSet>item"`
	}
	rAllocate struct {
		AllocationID string `xml:"allocationId"`
		PublicIP     string `xml:"publicIp"`
		Domain       string `xml:"domain"`
	}
	rAddresses struct {
		Addresses []xAddress `xml:"addressesSet>item"`
	}
	rAssigned struct {
		NetworkInterfaceID string        `xml:"networkInterfaceId"`
		Assigned           []xAssignedIP `xml:"assignedPrivateIpAddressesSet>item"`
	}
	xAssignedIP struct {
		PrivateIP string `xml:"privateIpAddress"`
	}
)

var handlers = map[string]handler{
	"RunInstances": func(r *http.Request, f *fake.EC2, q *form) (any, error) {
		in := &ec2.RunInstancesInput{
			ImageId: q.str("ImageId"), InstanceType: types.InstanceType(aws.ToString(q.str("InstanceType"))),
			ClientToken: q.str("ClientToken"), UserData: q.str("UserData"), KeyName: q.str("KeyName"), SubnetId: q.str("SubnetId"),
			SecurityGroupIds:                  q.list("SecurityGroupId"),
			InstanceInitiatedShutdownBehavior: types.ShutdownBehavior(aws.ToString(q.str("InstanceInitiatedShutdownBehavior"))),
			TagSpecifications:                 q.tagSpecs(),
		}
		var err error
		if in.MinCount, err = q.i32("MinCount"); err != nil {
			return nil, err
		}
		if in.MaxCount, err = q.i32("MaxCount"); err != nil {
			return nil, err
		}
		if n := q.str("IamInstanceProfile.Name"); n != nil {
			in.IamInstanceProfile = &types.IamInstanceProfileSpecification{Name: n}
		}
		if q.str("MetadataOptions.HttpTokens") != nil {
			hops, err := q.i32("MetadataOptions.HttpPutResponseHopLimit")
			if err != nil {
				return nil, err
			}
			in.MetadataOptions = &types.InstanceMetadataOptionsRequest{
				HttpTokens:              types.HttpTokensState(aws.ToString(q.str("MetadataOptions.HttpTokens"))),
				HttpEndpoint:            types.InstanceMetadataEndpointState(aws.ToString(q.str("MetadataOptions.HttpEndpoint"))),
				HttpPutResponseHopLimit: hops,
			}
		}
		for i := 1; i <= q.count("BlockDeviceMapping"); i++ {
			p := fmt.Sprintf("BlockDeviceMapping.%d", i)
			size, err := q.i32(p + ".Ebs.VolumeSize")
			if err != nil {
				return nil, err
			}
			in.BlockDeviceMappings = append(in.BlockDeviceMappings, types.BlockDeviceMapping{
				DeviceName: q.str(p + ".DeviceName"),
				Ebs: &types.EbsBlockDevice{VolumeSize: size, VolumeType: types.VolumeType(aws.ToString(q.str(p + ".Ebs.VolumeType"))),
					DeleteOnTermination: q.boolean(p + ".Ebs.DeleteOnTermination"), Encrypted: q.boolean(p + ".Ebs.Encrypted")},
			})
		}
		for i := 1; i <= q.count("NetworkInterface"); i++ {
			p := fmt.Sprintf("NetworkInterface.%d", i)
			idx, err := q.i32(p + ".DeviceIndex")
			if err != nil {
				return nil, err
			}
			in.NetworkInterfaces = append(in.NetworkInterfaces, types.InstanceNetworkInterfaceSpecification{
				DeviceIndex: idx, NetworkInterfaceId: q.str(p + ".NetworkInterfaceId"),
			})
		}
		out, err := f.RunInstances(r.Context(), in)
		if err != nil {
			return nil, err
		}
		resp := rReservation{ReservationID: aws.ToString(out.ReservationId), OwnerID: aws.ToString(out.OwnerId)}
		for _, i := range out.Instances {
			resp.Instances = append(resp.Instances, xInstanceOf(i))
		}
		return resp, nil
	},
	"DescribeInstances": func(r *http.Request, f *fake.EC2, q *form) (any, error) {
		mr, err := q.i32("MaxResults")
		if err != nil {
			return nil, err
		}
		out, err := f.DescribeInstances(r.Context(), &ec2.DescribeInstancesInput{InstanceIds: q.list("InstanceId"), Filters: q.filters(), MaxResults: mr, NextToken: q.str("NextToken")})
		if err != nil {
			return nil, err
		}
		resp := rDescribeInstances{NextToken: aws.ToString(out.NextToken)}
		for _, res := range out.Reservations {
			x := xReservation{ReservationID: aws.ToString(res.ReservationId), OwnerID: aws.ToString(res.OwnerId)}
			for _, i := range res.Instances {
				x.Instances = append(x.Instances, xInstanceOf(i))
			}
			resp.Reservations = append(resp.Reservations, x)
		}
		return resp, nil
	},
	"TerminateInstances": func(r *http.Request, f *fake.EC2, q *form) (any, error) {
		out, err := f.TerminateInstances(r.Context(), &ec2.TerminateInstancesInput{InstanceIds: q.list("InstanceId")})
		if err != nil {
			return nil, err
		}
		var resp rTerminate
		for _, c := range out.TerminatingInstances {
			resp.Changes = append(resp.Changes, xStateChange{aws.ToString(c.InstanceId), xStateOf(c.CurrentState), xStateOf(c.PreviousState)})
		}
		return resp, nil
	},
	"DescribeAvailabilityZones": func(r *http.Request, f *fake.EC2, q *form) (any, error) {
		out, err := f.DescribeAvailabilityZones(r.Context(), &ec2.DescribeAvailabilityZonesInput{Filters: q.filters()})
		if err != nil {
			return nil, err
		}
		var resp rZones
		for _, z := range out.AvailabilityZones {
			resp.Zones = append(resp.Zones, xZone{aws.ToString(z.ZoneName), aws.ToString(z.ZoneId), string(z.State), aws.ToString(z.RegionName), aws.ToString(z.ZoneType)})
		}
		return resp, nil
	},
	"DescribeInstanceTypes": func(r *http.Request, f *fake.EC2, q *form) (any, error) {
		var names []types.InstanceType
		for _, n := range q.list("InstanceType") {
			names = append(names, types.InstanceType(n))
		}
		out, err := f.DescribeInstanceTypes(r.Context(), &ec2.DescribeInstanceTypesInput{InstanceTypes: names})
		if err != nil {
			return nil, err
		}
		var resp rInstanceTypes
		for _, t := range out.InstanceTypes {
			x := xInstanceType{Type: string(t.InstanceType), VCPUs: aws.ToInt32(t.VCpuInfo.DefaultVCpus), MemoryMB: aws.ToInt64(t.MemoryInfo.SizeInMiB)}
			for _, a := range t.ProcessorInfo.SupportedArchitectures {
				x.Archs = append(x.Archs, string(a))
			}
			resp.Types = append(resp.Types, x)
		}
		return resp, nil
	},
	"DescribeImages": func(r *http.Request, f *fake.EC2, q *form) (any, error) {
		mr, err := q.i32("MaxResults")
		if err != nil {
			return nil, err
		}
		out, err := f.DescribeImages(r.Context(), &ec2.DescribeImagesInput{ImageIds: q.list("ImageId"), Owners: q.list("Owner"), Filters: q.filters(), MaxResults: mr, NextToken: q.str("NextToken")})
		if err != nil {
			return nil, err
		}
		resp := rImages{NextToken: aws.ToString(out.NextToken)}
		for _, im := range out.Images {
			resp.Images = append(resp.Images, xImage{aws.ToString(im.ImageId), aws.ToString(im.Name), aws.ToString(im.OwnerId), string(im.State),
				string(im.Architecture), aws.ToString(im.CreationDate), aws.ToString(im.RootDeviceName), string(im.RootDeviceType), string(im.VirtualizationType)})
		}
		return resp, nil
	},
	"DescribeKeyPairs": func(r *http.Request, f *fake.EC2, q *form) (any, error) {
		out, err := f.DescribeKeyPairs(r.Context(), &ec2.DescribeKeyPairsInput{KeyNames: q.list("KeyName")})
		if err != nil {
			return nil, err
		}
		var resp rKeyPairs
		for _, k := range out.KeyPairs {
			resp.Keys = append(resp.Keys, xKeyPair{aws.ToString(k.KeyName)})
		}
		return resp, nil
	},
	"CreateVpc": func(r *http.Request, f *fake.EC2, q *form) (any, error) {
		out, err := f.CreateVpc(r.Context(), &ec2.CreateVpcInput{CidrBlock: q.str("CidrBlock"), TagSpecifications: q.tagSpecs()})
		if err != nil {
			return nil, err
		}
		return rVpc{xVpcOf(*out.Vpc)}, nil
	},
	"DescribeVpcs": func(r *http.Request, f *fake.EC2, q *form) (any, error) {
		out, err := f.DescribeVpcs(r.Context(), &ec2.DescribeVpcsInput{VpcIds: q.list("VpcId"), Filters: q.filters()})
		if err != nil {
			return nil, err
		}
		var resp rVpcs
		for _, v := range out.Vpcs {
			resp.Vpcs = append(resp.Vpcs, xVpcOf(v))
		}
		return resp, nil
	},
	"DeleteVpc": func(r *http.Request, f *fake.EC2, q *form) (any, error) {
		_, err := f.DeleteVpc(r.Context(), &ec2.DeleteVpcInput{VpcId: q.str("VpcId")})
		return rReturn{true}, err
	},
	"CreateSubnet": func(r *http.Request, f *fake.EC2, q *form) (any, error) {
		out, err := f.CreateSubnet(r.Context(), &ec2.CreateSubnetInput{VpcId: q.str("VpcId"), CidrBlock: q.str("CidrBlock"), AvailabilityZone: q.str("AvailabilityZone"), TagSpecifications: q.tagSpecs()})
		if err != nil {
			return nil, err
		}
		return rSubnet{xSubnetOf(*out.Subnet)}, nil
	},
	"DescribeSubnets": func(r *http.Request, f *fake.EC2, q *form) (any, error) {
		mr, err := q.i32("MaxResults")
		if err != nil {
			return nil, err
		}
		out, err := f.DescribeSubnets(r.Context(), &ec2.DescribeSubnetsInput{SubnetIds: q.list("SubnetId"), Filters: q.filters(), MaxResults: mr, NextToken: q.str("NextToken")})
		if err != nil {
			return nil, err
		}
		resp := rSubnets{NextToken: aws.ToString(out.NextToken)}
		for _, s := range out.Subnets {
			resp.Subnets = append(resp.Subnets, xSubnetOf(s))
		}
		return resp, nil
	},
	"ModifySubnetAttribute": func(r *http.Request, f *fake.EC2, q *form) (any, error) {
		in := &ec2.ModifySubnetAttributeInput{SubnetId: q.str("SubnetId")}
		if v := q.boolean("MapPublicIpOnLaunch.Value"); v != nil {
			in.MapPublicIpOnLaunch = &types.AttributeBooleanValue{Value: v}
		}
		_, err := f.ModifySubnetAttribute(r.Context(), in)
		return rReturn{true}, err
	},
	"DeleteSubnet": func(r *http.Request, f *fake.EC2, q *form) (any, error) {
		_, err := f.DeleteSubnet(r.Context(), &ec2.DeleteSubnetInput{SubnetId: q.str("SubnetId")})
		return rReturn{true}, err
	},
	"CreateInternetGateway": func(r *http.Request, f *fake.EC2, q *form) (any, error) {
		out, err := f.CreateInternetGateway(r.Context(), &ec2.CreateInternetGatewayInput{TagSpecifications: q.tagSpecs()})
		if err != nil {
			return nil, err
		}
		return rIGW{xIGWOf(*out.InternetGateway)}, nil
	},
	"DescribeInternetGateways": func(r *http.Request, f *fake.EC2, q *form) (any, error) {
		out, err := f.DescribeInternetGateways(r.Context(), &ec2.DescribeInternetGatewaysInput{InternetGatewayIds: q.list("InternetGatewayId"), Filters: q.filters()})
		if err != nil {
			return nil, err
		}
		var resp rIGWs
		for _, g := range out.InternetGateways {
			resp.IGWs = append(resp.IGWs, xIGWOf(g))
		}
		return resp, nil
	},
	"AttachInternetGateway": func(r *http.Request, f *fake.EC2, q *form) (any, error) {
		_, err := f.AttachInternetGateway(r.Context(), &ec2.AttachInternetGatewayInput{InternetGatewayId: q.str("InternetGatewayId"), VpcId: q.str("VpcId")})
		return rReturn{true}, err
	},
	"DetachInternetGateway": func(r *http.Request, f *fake.EC2, q *form) (any, error) {
		_, err := f.DetachInternetGateway(r.Context(), &ec2.DetachInternetGatewayInput{InternetGatewayId: q.str("InternetGatewayId"), VpcId: q.str("VpcId")})
		return rReturn{true}, err
	},
	"DeleteInternetGateway": func(r *http.Request, f *fake.EC2, q *form) (any, error) {
		_, err := f.DeleteInternetGateway(r.Context(), &ec2.DeleteInternetGatewayInput{InternetGatewayId: q.str("InternetGatewayId")})
		return rReturn{true}, err
	},
	"CreateRouteTable": func(r *http.Request, f *fake.EC2, q *form) (any, error) {
		out, err := f.CreateRouteTable(r.Context(), &ec2.CreateRouteTableInput{VpcId: q.str("VpcId"), ClientToken: q.str("ClientToken"), TagSpecifications: q.tagSpecs()})
		if err != nil {
			return nil, err
		}
		return rRouteTable{xRouteTableOf(*out.RouteTable), aws.ToString(out.ClientToken)}, nil
	},
	"DescribeRouteTables": func(r *http.Request, f *fake.EC2, q *form) (any, error) {
		out, err := f.DescribeRouteTables(r.Context(), &ec2.DescribeRouteTablesInput{RouteTableIds: q.list("RouteTableId"), Filters: q.filters()})
		if err != nil {
			return nil, err
		}
		var resp rRouteTables
		for _, rt := range out.RouteTables {
			resp.RouteTables = append(resp.RouteTables, xRouteTableOf(rt))
		}
		return resp, nil
	},
	"CreateRoute": func(r *http.Request, f *fake.EC2, q *form) (any, error) {
		_, err := f.CreateRoute(r.Context(), &ec2.CreateRouteInput{RouteTableId: q.str("RouteTableId"), DestinationCidrBlock: q.str("DestinationCidrBlock"), GatewayId: q.str("GatewayId")})
		return rReturn{true}, err
	},
	"AssociateRouteTable": func(r *http.Request, f *fake.EC2, q *form) (any, error) {
		out, err := f.AssociateRouteTable(r.Context(), &ec2.AssociateRouteTableInput{RouteTableId: q.str("RouteTableId"), SubnetId: q.str("SubnetId")})
		if err != nil {
			return nil, err
		}
		return rAssociation{aws.ToString(out.AssociationId)}, nil
	},
	"DeleteRouteTable": func(r *http.Request, f *fake.EC2, q *form) (any, error) {
		_, err := f.DeleteRouteTable(r.Context(), &ec2.DeleteRouteTableInput{RouteTableId: q.str("RouteTableId")})
		return rReturn{true}, err
	},
	"CreateSecurityGroup": func(r *http.Request, f *fake.EC2, q *form) (any, error) {
		out, err := f.CreateSecurityGroup(r.Context(), &ec2.CreateSecurityGroupInput{GroupName: q.str("GroupName"), Description: q.str("GroupDescription"), VpcId: q.str("VpcId"), TagSpecifications: q.tagSpecs()})
		if err != nil {
			return nil, err
		}
		return rGroupID{aws.ToString(out.GroupId)}, nil
	},
	"DescribeSecurityGroups": func(r *http.Request, f *fake.EC2, q *form) (any, error) {
		out, err := f.DescribeSecurityGroups(r.Context(), &ec2.DescribeSecurityGroupsInput{GroupIds: q.list("GroupId"), Filters: q.filters()})
		if err != nil {
			return nil, err
		}
		var resp rGroups
		for _, g := range out.SecurityGroups {
			resp.Groups = append(resp.Groups, xSecurityGroupOf(g))
		}
		return resp, nil
	},
	"AuthorizeSecurityGroupIngress": func(r *http.Request, f *fake.EC2, q *form) (any, error) {
		in := &ec2.AuthorizeSecurityGroupIngressInput{GroupId: q.str("GroupId"), TagSpecifications: q.tagSpecs()}
		for i := 1; i <= q.count("IpPermissions"); i++ {
			p := fmt.Sprintf("IpPermissions.%d", i)
			from, err := q.i32(p + ".FromPort")
			if err != nil {
				return nil, err
			}
			to, err := q.i32(p + ".ToPort")
			if err != nil {
				return nil, err
			}
			perm := types.IpPermission{IpProtocol: q.str(p + ".IpProtocol"), FromPort: from, ToPort: to}
			for j := 1; j <= q.count(p+".Groups"); j++ {
				perm.UserIdGroupPairs = append(perm.UserIdGroupPairs, types.UserIdGroupPair{GroupId: q.str(fmt.Sprintf("%s.Groups.%d.GroupId", p, j))})
			}
			for j := 1; j <= q.count(p+".IpRanges"); j++ {
				perm.IpRanges = append(perm.IpRanges, types.IpRange{CidrIp: q.str(fmt.Sprintf("%s.IpRanges.%d.CidrIp", p, j))})
			}
			in.IpPermissions = append(in.IpPermissions, perm)
		}
		_, err := f.AuthorizeSecurityGroupIngress(r.Context(), in)
		return rReturn{true}, err
	},
	"DeleteSecurityGroup": func(r *http.Request, f *fake.EC2, q *form) (any, error) {
		_, err := f.DeleteSecurityGroup(r.Context(), &ec2.DeleteSecurityGroupInput{GroupId: q.str("GroupId")})
		return rReturn{true}, err
	},
	"CreateNetworkInterface": func(r *http.Request, f *fake.EC2, q *form) (any, error) {
		count, err := q.i32("SecondaryPrivateIpAddressCount")
		if err != nil {
			return nil, err
		}
		out, err := f.CreateNetworkInterface(r.Context(), &ec2.CreateNetworkInterfaceInput{SubnetId: q.str("SubnetId"), Groups: q.list("SecurityGroupId"),
			Description: q.str("Description"), ClientToken: q.str("ClientToken"), TagSpecifications: q.tagSpecs(),
			SecondaryPrivateIpAddressCount: count})
		if err != nil {
			return nil, err
		}
		return rENI{xENIOf(*out.NetworkInterface), aws.ToString(out.ClientToken)}, nil
	},
	"DescribeNetworkInterfaces": func(r *http.Request, f *fake.EC2, q *form) (any, error) {
		out, err := f.DescribeNetworkInterfaces(r.Context(), &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: q.list("NetworkInterfaceId"), Filters: q.filters()})
		if err != nil {
			return nil, err
		}
		var resp rENIs
		for _, n := range out.NetworkInterfaces {
			resp.ENIs = append(resp.ENIs, xENIOf(n))
		}
		return resp, nil
	},
	"DeleteNetworkInterface": func(r *http.Request, f *fake.EC2, q *form) (any, error) {
		_, err := f.DeleteNetworkInterface(r.Context(), &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: q.str("NetworkInterfaceId")})
		return rReturn{true}, err
	},
	"AssignPrivateIpAddresses": func(r *http.Request, f *fake.EC2, q *form) (any, error) {
		count, err := q.i32("SecondaryPrivateIpAddressCount")
		if err != nil {
			return nil, err
		}
		out, err := f.AssignPrivateIpAddresses(r.Context(), &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: q.str("NetworkInterfaceId"),
			PrivateIpAddresses: q.list("PrivateIpAddress"), AllowReassignment: q.boolean("AllowReassignment"), SecondaryPrivateIpAddressCount: count})
		if err != nil {
			return nil, err
		}
		resp := rAssigned{NetworkInterfaceID: aws.ToString(out.NetworkInterfaceId)}
		for _, a := range out.AssignedPrivateIpAddresses {
			resp.Assigned = append(resp.Assigned, xAssignedIP{aws.ToString(a.PrivateIpAddress)})
		}
		return resp, nil
	},
	"CreateTags": func(r *http.Request, f *fake.EC2, q *form) (any, error) {
		in := &ec2.CreateTagsInput{Resources: q.list("ResourceId")}
		for i := 1; i <= q.count("Tag"); i++ {
			p := fmt.Sprintf("Tag.%d", i)
			in.Tags = append(in.Tags, types.Tag{Key: q.str(p + ".Key"), Value: q.str(p + ".Value")})
		}
		_, err := f.CreateTags(r.Context(), in)
		return rReturn{true}, err
	},
	"AllocateAddress": func(r *http.Request, f *fake.EC2, q *form) (any, error) {
		out, err := f.AllocateAddress(r.Context(), &ec2.AllocateAddressInput{Domain: types.DomainType(aws.ToString(q.str("Domain"))), TagSpecifications: q.tagSpecs()})
		if err != nil {
			return nil, err
		}
		return rAllocate{aws.ToString(out.AllocationId), aws.ToString(out.PublicIp), string(out.Domain)}, nil
	},
	"DescribeAddresses": func(r *http.Request, f *fake.EC2, q *form) (any, error) {
		out, err := f.DescribeAddresses(r.Context(), &ec2.DescribeAddressesInput{AllocationIds: q.list("AllocationId"), Filters: q.filters()})
		if err != nil {
			return nil, err
		}
		var resp rAddresses
		for _, a := range out.Addresses {
			resp.Addresses = append(resp.Addresses, xAddressOf(a))
		}
		return resp, nil
	},
	"AssociateAddress": func(r *http.Request, f *fake.EC2, q *form) (any, error) {
		out, err := f.AssociateAddress(r.Context(), &ec2.AssociateAddressInput{AllocationId: q.str("AllocationId"), NetworkInterfaceId: q.str("NetworkInterfaceId"),
			PrivateIpAddress: q.str("PrivateIpAddress"), AllowReassociation: q.boolean("AllowReassociation")})
		if err != nil {
			return nil, err
		}
		return rAssociation{aws.ToString(out.AssociationId)}, nil
	},
	"DisassociateAddress": func(r *http.Request, f *fake.EC2, q *form) (any, error) {
		_, err := f.DisassociateAddress(r.Context(), &ec2.DisassociateAddressInput{AssociationId: q.str("AssociationId")})
		return rReturn{true}, err
	},
	"ReleaseAddress": func(r *http.Request, f *fake.EC2, q *form) (any, error) {
		_, err := f.ReleaseAddress(r.Context(), &ec2.ReleaseAddressInput{AllocationId: q.str("AllocationId")})
		return rReturn{true}, err
	},
}
