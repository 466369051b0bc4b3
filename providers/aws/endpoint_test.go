package aws

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// vipInterface is the interface EC2 maps the endpoint address to now, as
// the holder's tag names it; "" when none.
func vipInterface(t testing.TB, e *env) string {
	t.Helper()
	ctx := context.Background()
	hs, err := e.ec2.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{
		Filters: e.p.ownedFilters(filter("tag:"+tagComponent, componentEndpoint)),
	})
	if err != nil || len(hs.NetworkInterfaces) != 1 {
		t.Fatalf("endpoint holders: %v, %v", hs, err)
	}
	vip := tagMap(hs.NetworkInterfaces[0].TagSet)[tagEndpointIP]
	if vip == "" {
		t.Fatal("the holder is not tagged with the endpoint address")
	}
	out, err := e.ec2.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{
		Filters: []types.Filter{filter("addresses.private-ip-address", vip)},
	})
	if err != nil || len(out.NetworkInterfaces) > 1 {
		t.Fatalf("interfaces with %s: %v, %v", vip, out, err)
	}
	if len(out.NetworkInterfaces) == 0 {
		return ""
	}
	return aws.ToString(out.NetworkInterfaces[0].NetworkInterfaceId)
}
