package ec2server

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// XML shapes of the responses, holding the members the provider reads;
// element names are EC2's (lists are <xSet><item>...).

type xTag struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

func xTags(tags []types.Tag) []xTag {
	out := make([]xTag, 0, len(tags))
	for _, t := range tags {
		out = append(out, xTag{aws.ToString(t.Key), aws.ToString(t.Value)})
	}
	return out
}

type xGroup struct {
	GroupID   string `xml:"groupId"`
	GroupName string `xml:"groupName,omitempty"`
}

type xState struct {
	Code int32  `xml:"code"`
	Name string `xml:"name"`
}

func xStateOf(s *types.InstanceState) xState {
	if s == nil {
		return xState{}
	}
	return xState{aws.ToInt32(s.Code), string(s.Name)}
}

type xInstance struct {
	InstanceID     string     `xml:"instanceId"`
	ImageID        string     `xml:"imageId"`
	State          xState     `xml:"instanceState"`
	PrivateIP      string     `xml:"privateIpAddress,omitempty"`
	KeyName        string     `xml:"keyName,omitempty"`
	AmiLaunchIndex int32      `xml:"amiLaunchIndex"`
	InstanceType   string     `xml:"instanceType"`
	LaunchTime     string     `xml:"launchTime"`
	AZ             string     `xml:"placement>availabilityZone"`
	SubnetID       string     `xml:"subnetId,omitempty"`
	VpcID          string     `xml:"vpcId,omitempty"`
	ClientToken    string     `xml:"clientToken,omitempty"`
	Groups         []xGroup   `xml:"groupSet>item"`
	Tags           []xTag     `xml:"tagSet>item"`
	Profile        *xProfile  `xml:"iamInstanceProfile,omitempty"`
	Metadata       *xMetadata `xml:"metadataOptions,omitempty"`
	Interfaces     []xInstENI `xml:"networkInterfaceSet>item"`
}

type xProfile struct {
	Arn string `xml:"arn"`
}

type xMetadata struct {
	State      string `xml:"state"`
	HTTPTokens string `xml:"httpTokens"`
	HopLimit   int32  `xml:"httpPutResponseHopLimit"`
	Endpoint   string `xml:"httpEndpoint"`
}

type xInstENI struct {
	ID         string              `xml:"networkInterfaceId"`
	PrivateIP  string              `xml:"privateIpAddress"`
	Attachment *xInstENIAttachment `xml:"attachment,omitempty"`
}

type xInstENIAttachment struct {
	DeviceIndex int32 `xml:"deviceIndex"`
}

func xInstanceOf(in types.Instance) xInstance {
	x := xInstance{
		InstanceID: aws.ToString(in.InstanceId), ImageID: aws.ToString(in.ImageId), State: xStateOf(in.State),
		PrivateIP: aws.ToString(in.PrivateIpAddress), KeyName: aws.ToString(in.KeyName), AmiLaunchIndex: aws.ToInt32(in.AmiLaunchIndex),
		InstanceType: string(in.InstanceType), LaunchTime: isoTime(in.LaunchTime), SubnetID: aws.ToString(in.SubnetId),
		VpcID: aws.ToString(in.VpcId), ClientToken: aws.ToString(in.ClientToken), Tags: xTags(in.Tags),
	}
	if in.Placement != nil {
		x.AZ = aws.ToString(in.Placement.AvailabilityZone)
	}
	for _, g := range in.SecurityGroups {
		x.Groups = append(x.Groups, xGroup{GroupID: aws.ToString(g.GroupId), GroupName: aws.ToString(g.GroupName)})
	}
	if in.IamInstanceProfile != nil {
		x.Profile = &xProfile{Arn: aws.ToString(in.IamInstanceProfile.Arn)}
	}
	if m := in.MetadataOptions; m != nil {
		x.Metadata = &xMetadata{State: string(m.State), HTTPTokens: string(m.HttpTokens), HopLimit: aws.ToInt32(m.HttpPutResponseHopLimit), Endpoint: string(m.HttpEndpoint)}
	}
	for _, n := range in.NetworkInterfaces {
		xi := xInstENI{ID: aws.ToString(n.NetworkInterfaceId), PrivateIP: aws.ToString(n.PrivateIpAddress)}
		if n.Attachment != nil {
			xi.Attachment = &xInstENIAttachment{aws.ToInt32(n.Attachment.DeviceIndex)}
		}
		x.Interfaces = append(x.Interfaces, xi)
	}
	return x
}

type xReservation struct {
	ReservationID string      `xml:"reservationId"`
	OwnerID       string      `xml:"ownerId"`
	Instances     []xInstance `xml:"instancesSet>item"`
}

type xVpc struct {
	VpcID     string `xml:"vpcId"`
	CidrBlock string `xml:"cidrBlock"`
	State     string `xml:"state"`
	OwnerID   string `xml:"ownerId"`
	Tags      []xTag `xml:"tagSet>item"`
}

func xVpcOf(v types.Vpc) xVpc {
	return xVpc{aws.ToString(v.VpcId), aws.ToString(v.CidrBlock), string(v.State), aws.ToString(v.OwnerId), xTags(v.Tags)}
}

type xSubnet struct {
	SubnetID    string `xml:"subnetId"`
	VpcID       string `xml:"vpcId"`
	CidrBlock   string `xml:"cidrBlock"`
	AZ          string `xml:"availabilityZone"`
	State       string `xml:"state"`
	MapPublicIP bool   `xml:"mapPublicIpOnLaunch"`
	Tags        []xTag `xml:"tagSet>item"`
}

func xSubnetOf(s types.Subnet) xSubnet {
	return xSubnet{aws.ToString(s.SubnetId), aws.ToString(s.VpcId), aws.ToString(s.CidrBlock), aws.ToString(s.AvailabilityZone),
		string(s.State), aws.ToBool(s.MapPublicIpOnLaunch), xTags(s.Tags)}
}

type xAttachment struct {
	VpcID string `xml:"vpcId"`
	State string `xml:"state"`
}

type xIGW struct {
	ID          string        `xml:"internetGatewayId"`
	Attachments []xAttachment `xml:"attachmentSet>item"`
	Tags        []xTag        `xml:"tagSet>item"`
}

func xIGWOf(g types.InternetGateway) xIGW {
	x := xIGW{ID: aws.ToString(g.InternetGatewayId), Tags: xTags(g.Tags)}
	for _, a := range g.Attachments {
		x.Attachments = append(x.Attachments, xAttachment{aws.ToString(a.VpcId), string(a.State)})
	}
	return x
}

type xRoute struct {
	Destination string `xml:"destinationCidrBlock"`
	GatewayID   string `xml:"gatewayId,omitempty"`
	State       string `xml:"state,omitempty"`
}

type xAssociation struct {
	ID           string `xml:"routeTableAssociationId"`
	RouteTableID string `xml:"routeTableId"`
	SubnetID     string `xml:"subnetId,omitempty"`
	Main         bool   `xml:"main"`
}

type xRouteTable struct {
	ID           string         `xml:"routeTableId"`
	VpcID        string         `xml:"vpcId"`
	Routes       []xRoute       `xml:"routeSet>item"`
	Associations []xAssociation `xml:"associationSet>item"`
	Tags         []xTag         `xml:"tagSet>item"`
}

func xRouteTableOf(rt types.RouteTable) xRouteTable {
	x := xRouteTable{ID: aws.ToString(rt.RouteTableId), VpcID: aws.ToString(rt.VpcId), Tags: xTags(rt.Tags)}
	for _, r := range rt.Routes {
		x.Routes = append(x.Routes, xRoute{aws.ToString(r.DestinationCidrBlock), aws.ToString(r.GatewayId), string(r.State)})
	}
	for _, a := range rt.Associations {
		x.Associations = append(x.Associations, xAssociation{aws.ToString(a.RouteTableAssociationId), aws.ToString(a.RouteTableId), aws.ToString(a.SubnetId), aws.ToBool(a.Main)})
	}
	return x
}

type xIPRange struct {
	CidrIP string `xml:"cidrIp"`
}

type xPermission struct {
	Protocol string     `xml:"ipProtocol"`
	FromPort *int32     `xml:"fromPort,omitempty"`
	ToPort   *int32     `xml:"toPort,omitempty"`
	Groups   []xGroup   `xml:"groups>item"`
	IPRanges []xIPRange `xml:"ipRanges>item"`
}

type xSecurityGroup struct {
	ID          string        `xml:"groupId"`
	Name        string        `xml:"groupName"`
	Description string        `xml:"groupDescription"`
	VpcID       string        `xml:"vpcId"`
	OwnerID     string        `xml:"ownerId"`
	Ingress     []xPermission `xml:"ipPermissions>item"`
	Tags        []xTag        `xml:"tagSet>item"`
}

func xSecurityGroupOf(g types.SecurityGroup) xSecurityGroup {
	x := xSecurityGroup{ID: aws.ToString(g.GroupId), Name: aws.ToString(g.GroupName), Description: aws.ToString(g.Description),
		VpcID: aws.ToString(g.VpcId), OwnerID: aws.ToString(g.OwnerId), Tags: xTags(g.Tags)}
	for _, p := range g.IpPermissions {
		xp := xPermission{Protocol: aws.ToString(p.IpProtocol), FromPort: p.FromPort, ToPort: p.ToPort}
		for _, pair := range p.UserIdGroupPairs {
			xp.Groups = append(xp.Groups, xGroup{GroupID: aws.ToString(pair.GroupId)})
		}
		for _, r := range p.IpRanges {
			xp.IPRanges = append(xp.IPRanges, xIPRange{aws.ToString(r.CidrIp)})
		}
		x.Ingress = append(x.Ingress, xp)
	}
	return x
}

type xENIAttachment struct {
	InstanceID  string `xml:"instanceId"`
	DeviceIndex int32  `xml:"deviceIndex"`
}

type xENI struct {
	ID          string          `xml:"networkInterfaceId"`
	SubnetID    string          `xml:"subnetId"`
	VpcID       string          `xml:"vpcId"`
	AZ          string          `xml:"availabilityZone"`
	Description string          `xml:"description,omitempty"`
	PrivateIP   string          `xml:"privateIpAddress"`
	Status      string          `xml:"status"`
	Groups      []xGroup        `xml:"groupSet>item"`
	Attachment  *xENIAttachment `xml:"attachment,omitempty"`
	Addresses   []xENIAddress   `xml:"privateIpAddressesSet>item"`
	Tags        []xTag          `xml:"tagSet>item"`
}

type xENIAddress struct {
	PrivateIP string `xml:"privateIpAddress"`
	Primary   bool   `xml:"primary"`
}

func xENIOf(n types.NetworkInterface) xENI {
	x := xENI{ID: aws.ToString(n.NetworkInterfaceId), SubnetID: aws.ToString(n.SubnetId), VpcID: aws.ToString(n.VpcId),
		AZ: aws.ToString(n.AvailabilityZone), Description: aws.ToString(n.Description), PrivateIP: aws.ToString(n.PrivateIpAddress),
		Status: string(n.Status), Tags: xTags(n.TagSet)}
	for _, g := range n.Groups {
		x.Groups = append(x.Groups, xGroup{GroupID: aws.ToString(g.GroupId)})
	}
	if a := n.Attachment; a != nil {
		x.Attachment = &xENIAttachment{aws.ToString(a.InstanceId), aws.ToInt32(a.DeviceIndex)}
	}
	for _, a := range n.PrivateIpAddresses {
		x.Addresses = append(x.Addresses, xENIAddress{aws.ToString(a.PrivateIpAddress), aws.ToBool(a.Primary)})
	}
	return x
}

type xAddress struct {
	AllocationID       string `xml:"allocationId"`
	AssociationID      string `xml:"associationId,omitempty"`
	PublicIP           string `xml:"publicIp"`
	Domain             string `xml:"domain"`
	NetworkInterfaceID string `xml:"networkInterfaceId,omitempty"`
	PrivateIP          string `xml:"privateIpAddress,omitempty"`
	Tags               []xTag `xml:"tagSet>item"`
}

func xAddressOf(a types.Address) xAddress {
	return xAddress{aws.ToString(a.AllocationId), aws.ToString(a.AssociationId), aws.ToString(a.PublicIp), string(a.Domain),
		aws.ToString(a.NetworkInterfaceId), aws.ToString(a.PrivateIpAddress), xTags(a.Tags)}
}

type xZone struct {
	Name   string `xml:"zoneName"`
	ID     string `xml:"zoneId"`
	State  string `xml:"zoneState"`
	Region string `xml:"regionName"`
	Type   string `xml:"zoneType"`
}

type xInstanceType struct {
	Type     string   `xml:"instanceType"`
	Archs    []string `xml:"processorInfo>supportedArchitectures>item"`
	VCPUs    int32    `xml:"vCpuInfo>defaultVCpus"`
	MemoryMB int64    `xml:"memoryInfo>sizeInMiB"`
}

type xImage struct {
	ID             string `xml:"imageId"`
	Name           string `xml:"name"`
	OwnerID        string `xml:"imageOwnerId"`
	State          string `xml:"imageState"`
	Architecture   string `xml:"architecture"`
	CreationDate   string `xml:"creationDate"`
	RootDeviceName string `xml:"rootDeviceName"`
	RootDeviceType string `xml:"rootDeviceType"`
	Virtualization string `xml:"virtualizationType"`
}

type xKeyPair struct {
	Name string `xml:"keyName"`
}

type xStateChange struct {
	InstanceID string `xml:"instanceId"`
	Current    xState `xml:"currentState"`
	Previous   xState `xml:"previousState"`
}
