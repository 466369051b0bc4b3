package aws

import (
	"context"
	"strings"
	"testing"

	"github.com/seedhq/seed/providers"
)

func TestPreflight(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*Options)
		want []string // substrings of the error; none means success
	}{
		{name: "valid", mod: func(*Options) {}},
		{name: "arm64 pool gets an arm64 image", mod: func(o *Options) { o.MachineTypes["spec.nodePools[1].machineType"] = "m7g.large" }},
		{name: "bad region", mod: func(o *Options) { o.Region = "europe" }, want: []string{"spec.provider.aws.region"}},
		{name: "unknown zone", mod: func(o *Options) { o.AvailabilityZones = []string{testRegion + "z"} },
			want: []string{"spec.provider.aws.availabilityZones[0]"}},
		{name: "unknown instance type", mod: func(o *Options) { o.MachineTypes["spec.nodePools[0].machineType"] = "m9x.huge" },
			want: []string{`spec.nodePools[0].machineType: instance type "m9x.huge"`}},
		{name: "control plane too small", mod: func(o *Options) { o.MachineTypes["spec.controlPlane.machineType"] = "t3.micro" },
			want: []string{"spec.controlPlane.machineType: t3.micro has 2 vCPUs and 1024 MiB"}},
		{name: "unknown AMI", mod: func(o *Options) { o.AMI = "ami-0000000000000dead" }, want: []string{"spec.provider.aws.ami"}},
		{name: "AMI of the wrong architecture", mod: func(o *Options) {
			o.AMI = "ami-0deb110000000000" // arm64
		}, want: []string{"spec.provider.aws.ami ami-0deb110000000000 is arm64", "needed by spec.controlPlane.machineType"}},
		{name: "unknown VPC", mod: func(o *Options) { o.VPCID, o.SubnetIDs = "vpc-0000000000000dead", []string{"subnet-1"} },
			want: []string{"spec.provider.aws.vpcID"}},
		{name: "unknown key pair", mod: func(o *Options) { o.SSHKeyName = "nope" }, want: []string{"spec.provider.aws.sshKeyName"}},
		{name: "several problems at once", mod: func(o *Options) {
			o.SSHKeyName = "nope"
			o.MachineTypes["spec.nodePools[0].machineType"] = "m9x.huge"
		}, want: []string{"spec.provider.aws.sshKeyName", "spec.nodePools[0].machineType"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, c.mod)
			err := e.p.Preflight(context.Background())
			if len(c.want) == 0 {
				if err != nil {
					t.Fatalf("Preflight = %v", err)
				}
				return
			}
			if !providers.IsInvalid(err) {
				t.Fatalf("Preflight = %v, want Invalid", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if got := e.ec2.Resources(); len(got) != 0 {
				t.Errorf("Preflight created %v", got)
			}
		})
	}
}

func TestNewValidatesOptions(t *testing.T) {
	for name, mod := range map[string]func(*Options){
		"no region":           func(o *Options) { o.Region = "" },
		"bad cluster name":    func(o *Options) { o.ClusterName = "Demo_1" },
		"VPC without subnets": func(o *Options) { o.VPCID = "vpc-1" },
		"subnets without VPC": func(o *Options) { o.SubnetIDs = []string{"subnet-1"} },
		"hop limit":           func(o *Options) { o.ControlPlaneHopLimit = 65 },
	} {
		e := newEnv(t)
		opts := e.opts
		mod(&opts)
		if _, err := New(context.Background(), opts); !providers.IsInvalid(err) {
			t.Errorf("%s: err = %v, want Invalid", name, err)
		}
	}
}
