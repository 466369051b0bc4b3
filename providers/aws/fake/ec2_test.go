package fake

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go"
)

func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func subnet(t *testing.T, f *EC2, zone string) string {
	ctx := context.Background()
	v, err := f.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	s, err := f.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: v.Vpc.VpcId, CidrBlock: aws.String("10.0.0.0/20"), AvailabilityZone: aws.String(zone)})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(s.Subnet.SubnetId)
}

func TestRunInstancesTokens(t *testing.T) {
	ctx := context.Background()
	f := NewEC2(NewClock(time.Unix(0, 0)), "eu-west-1")
	sub := subnet(t, f, "eu-west-1a")
	in := func(n int32) *ec2.RunInstancesInput {
		return &ec2.RunInstancesInput{ImageId: aws.String("ami-0deb000000000000"), InstanceType: "t3.micro",
			MinCount: aws.Int32(1), MaxCount: aws.Int32(n), SubnetId: aws.String(sub), ClientToken: aws.String("tok")}
	}
	// A failed call does not use up the token.
	f.SetCapacity("eu-west-1a", 0)
	if _, err := f.RunInstances(ctx, in(2)); code(err) != "InsufficientInstanceCapacity" {
		t.Fatalf("err = %v", err)
	}
	f.SetCapacity("eu-west-1a", 1)
	a, err := f.RunInstances(ctx, in(2))
	if err != nil || len(a.Instances) != 1 {
		t.Fatalf("partial launch = %v, %v", a, err)
	}
	b, err := f.RunInstances(ctx, in(2))
	if err != nil || aws.ToString(b.Instances[0].InstanceId) != aws.ToString(a.Instances[0].InstanceId) {
		t.Fatalf("same token launched again: %v, %v", b, err)
	}
	if _, err := f.RunInstances(ctx, in(3)); code(err) != "IdempotentParameterMismatch" {
		t.Errorf("changed parameters: err = %v", err)
	}
	if f.Calls("RunInstances") != 4 || f.TotalCalls() != 6 {
		t.Errorf("calls = %d / %d", f.Calls("RunInstances"), f.TotalCalls())
	}
	f.Reset()
	if f.TotalCalls() != 0 || len(f.Instances()) != 0 || len(f.Resources()) != 0 {
		t.Error("Reset left state")
	}
}

func TestThrottleRateIsDeterministic(t *testing.T) {
	run := func() []bool {
		f := NewEC2(NewClock(time.Unix(0, 0)), "eu-west-1")
		f.SetThrottleRate(0.3, 42)
		var out []bool
		for i := 0; i < 100; i++ {
			_, err := f.DescribeVpcs(context.Background(), &ec2.DescribeVpcsInput{})
			out = append(out, code(err) == "RequestLimitExceeded")
		}
		return out
	}
	a, b := run(), run()
	n := 0
	for i := range a {
		if a[i] != b[i] {
			t.Fatal("same seed, different throttling")
		}
		if a[i] {
			n++
		}
	}
	if n < 15 || n > 45 {
		t.Errorf("%d%% throttled, want about 30%%", n)
	}
}
