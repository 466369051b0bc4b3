package aws

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/seedhq/seed/providers"
)

// Tags every resource the cluster owns carries, beyond providers' labels.
const (
	// tagComponent says which of the cluster's resources this is
	// (vpc, subnet, nodes, api-server, endpoint...).
	tagComponent = "seed.dev/component"
	tagName      = "Name"
	// tagEndpointIP, on the endpoint's holder interface, is the
	// control-plane endpoint address (the VIP), wherever it is mapped now.
	tagEndpointIP = "seed.dev/endpoint-ip"
	// tagMachinesPrefix numbers the tags that name the machines of a batch
	// launch in launch-index order: "seed.dev/machines.0", ".1"... Each
	// holds space-separated names; see encodeNames.
	tagMachinesPrefix = "seed.dev/machines."
	ownedValue        = "owned"
	// maxTagValue is EC2's limit on a tag value, maxNameTags how many
	// tags a batch may spend on names (EC2 allows 50 per resource).
	maxTagValue = 256
	maxNameTags = 30
)

func ownershipKey(cluster string) string { return "kubernetes.io/cluster/" + cluster }

// Resource components, the values of tagComponent.
const (
	componentVPC        = "vpc"
	componentSubnet     = "subnet"
	componentIGW        = "internet-gateway"
	componentRouteTable = "route-table"
	componentNodes      = "nodes"
	componentAPIServer  = "api-server"
	componentEndpoint   = "endpoint"
)

// ownedTags are the tags of a cluster-wide resource.
func (p *provider) ownedTags(component string) []types.Tag {
	return []types.Tag{
		{Key: aws.String(ownershipKey(p.cluster)), Value: aws.String(ownedValue)},
		{Key: aws.String(providers.LabelCluster), Value: aws.String(p.cluster)},
		{Key: aws.String(tagComponent), Value: aws.String(component)},
		{Key: aws.String(tagName), Value: aws.String(p.cluster + "-" + component)},
	}
}

func tagSpec(rt types.ResourceType, tags []types.Tag) types.TagSpecification {
	return types.TagSpecification{ResourceType: rt, Tags: tags}
}

// ownedFilters find what the cluster owns: both ownership tags must match,
// so a resource someone re-tagged for another cluster is left alone.
func (p *provider) ownedFilters(extra ...types.Filter) []types.Filter {
	f := []types.Filter{
		{Name: aws.String("tag:" + providers.LabelCluster), Values: []string{p.cluster}},
		{Name: aws.String("tag:" + ownershipKey(p.cluster)), Values: []string{ownedValue}},
	}
	return append(f, extra...)
}

// owns says whether tags are those of a resource the cluster owns, by the
// same two tags ownedFilters match.
func (p *provider) owns(tags []types.Tag) bool {
	m := tagMap(tags)
	return m[ownershipKey(p.cluster)] == ownedValue && m[providers.LabelCluster] == p.cluster
}

func filter(name string, values ...string) types.Filter {
	return types.Filter{Name: aws.String(name), Values: values}
}

func tagMap(tags []types.Tag) map[string]string {
	m := make(map[string]string, len(tags))
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

// resourceName is "seed-<cluster>-<suffix>", shortened with a hash of the
// full name when it would exceed max (IAM names: 64).
func resourceName(cluster, suffix string, max int) string {
	full := "seed-" + cluster + "-" + suffix
	if len(full) <= max {
		return full
	}
	h := shortHash(full, 8)
	keep := max - len("seed--") - len(suffix) - len(h) - 1
	return "seed-" + strings.TrimRight(cluster[:keep], "-") + "-" + h + "-" + suffix
}

func shortHash(s string, n int) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:n]
}

func controlPlaneRoleName(cluster string) string { return resourceName(cluster, "control-plane", 64) }
func workerRoleName(cluster string) string       { return resourceName(cluster, "worker", 64) }

// bucketName is unique per account, region and cluster: bucket names are
// global, so the account and region go into a hash.
func bucketName(accountID, region, cluster string) string {
	h := shortHash(accountID+"/"+region+"/"+cluster, 12)
	c := cluster
	if max := 63 - len("seed--") - len(h); len(c) > max {
		c = strings.TrimRight(c[:max], "-")
	}
	return "seed-" + c + "-" + h
}

// backupBucketName is the bucket a cluster's backups outlive it in, named
// like bucketName. Its hash covers a word the cluster bucket's does not,
// so no cluster's bucket, which destroy deletes, can take this name (a
// cluster named "demo-backups" would otherwise come close).
func backupBucketName(accountID, region, cluster string) string {
	const word = "backups"
	h := shortHash(accountID+"/"+region+"/"+cluster+"/"+word, 12)
	c := cluster
	if max := 63 - len("seed---") - len(word) - len(h); len(c) > max {
		c = strings.TrimRight(c[:max], "-")
	}
	return "seed-" + c + "-" + word + "-" + h
}

// clientToken is the RunInstances idempotency token for launching these
// machine names. It depends only on the cluster, the names and a
// generation, so a retry, or an agent restarted between the call and
// recording its result, sends the same token and gets the same instances.
// The generation moves on only when every instance of the token's earlier
// launch is gone: EC2 remembers a token for at least 24 hours after its
// instances terminate. Tokens are at most 64 ASCII characters.
func clientToken(cluster string, names []string, generation int) string {
	s := append([]string(nil), names...)
	sort.Strings(s)
	return fmt.Sprintf("seed-%s-g%d", shortHash(cluster+"\x00"+strings.Join(s, "\x00"), 48), generation)
}

// encodeNames spreads names, in launch-index order, over as few tags as
// fit EC2's 256-character values. ok is false when they need more than
// maxNameTags tags.
func encodeNames(names []string) (tags []types.Tag, ok bool) {
	var cur []string
	n := 0
	flush := func() {
		if len(cur) == 0 {
			return
		}
		tags = append(tags, types.Tag{
			Key:   aws.String(fmt.Sprintf("%s%d", tagMachinesPrefix, n)),
			Value: aws.String(strings.Join(cur, " ")),
		})
		n++
		cur = nil
	}
	size := 0
	for _, name := range names {
		if len(cur) > 0 && size+1+len(name) > maxTagValue {
			flush()
			size = 0
		}
		if len(cur) > 0 {
			size++
		}
		size += len(name)
		cur = append(cur, name)
	}
	flush()
	return tags, len(tags) <= maxNameTags
}

// machineName reads an instance's machine name from its tags: the
// seed.dev/machine tag of a single launch, or its launch index into the
// names of a batch launch.
func machineName(tags map[string]string, launchIndex int32) string {
	if n := tags[providers.LabelMachine]; n != "" {
		return n
	}
	var names []string
	for i := 0; ; i++ {
		v, ok := tags[fmt.Sprintf("%s%d", tagMachinesPrefix, i)]
		if !ok {
			break
		}
		names = append(names, strings.Fields(v)...)
	}
	if launchIndex < 0 || int(launchIndex) >= len(names) {
		return ""
	}
	return names[launchIndex]
}
