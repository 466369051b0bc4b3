package v1alpha1

import (
	"encoding/json"
	"fmt"
	"reflect"
)

// immutableChanges compares a spec with the last valid spec of the same
// cluster and reports the edits the cluster cannot carry out:
//
//   - metadata.name: machines, Docker networks and cloud tags carry it, and
//     the agent finds its machines by it.
//   - every field under spec.provider: the agent builds its provider from
//     the spec once, and the infrastructure (network, VPC, subnets, region,
//     API server port) and the agent's own Deployment (image, credentials)
//     were made from these values when the cluster was created. An edit would
//     be accepted and then do nothing until the agent restarts, and then only
//     for machines made afterwards.
//
// Fields are compared by reflection so that a provider field added later is
// immutable until someone decides otherwise and makes it work.
//
// covered lists paths whose other problems the change explains: "set it back"
// fixes them too, and a hint to choose a valid new value would mislead.
func immutableChanges(prev, c *Cluster) (errs errorList, covered []string) {
	if prev.Metadata.Name != "" && c.Metadata.Name != prev.Metadata.Name {
		errs.add("metadata.name", fmt.Sprintf("immutable once the cluster exists, because its machines and cloud resources are named and tagged with it: set it back to %q; to rename the cluster, create a new cluster", prev.Metadata.Name))
		covered = append(covered, "metadata.name")
	}

	const provider = "spec.provider"
	was, is := providerKind(&prev.Spec.Provider), providerKind(&c.Spec.Provider)
	if was == "" {
		// Not reached with a valid previous spec; there is nothing to keep.
		return errs, covered
	}
	field := provider + "." + was
	block := reflect.ValueOf(providerBlock(&c.Spec.Provider, was))
	if block.IsNil() {
		detail := fmt.Sprintf("immutable once the cluster exists, and the cluster runs on %s: restore %s as it was", was, field)
		if is != "" {
			detail += fmt.Sprintf(" and remove %s.%s", provider, is)
		}
		errs.add(field, detail+"; to move the cluster to another provider, create a new cluster")
		// Whatever else is wrong under spec.provider goes with the restore.
		return errs, append(covered, provider)
	}
	// With both providers set, validateProvider says to keep one; the block
	// the cluster runs on must still be as it was.
	for _, fe := range changedFields(field, reflect.ValueOf(providerBlock(&prev.Spec.Provider, was)).Elem(), block.Elem()) {
		errs = append(errs, fe)
		covered = append(covered, fe.Field)
	}
	return errs, covered
}

// providerKind names the one provider set, or "" when none or several are
// (which validateProvider reports).
func providerKind(p *ProviderSpec) string {
	if set := providerKinds(p); len(set) == 1 {
		return set[0]
	}
	return ""
}

// providerKinds names the providers the spec sets, in the spec's order.
func providerKinds(p *ProviderSpec) []string {
	var set []string
	if p.Docker != nil {
		set = append(set, "docker")
	}
	if p.AWS != nil {
		set = append(set, "aws")
	}
	if p.Simulated != nil {
		set = append(set, "simulated")
	}
	return set
}

// providerBlock returns the settings of the named provider: a pointer to its
// struct, nil when the spec does not set it.
func providerBlock(p *ProviderSpec, kind string) any {
	switch kind {
	case "docker":
		return p.Docker
	case "simulated":
		return p.Simulated
	}
	return p.AWS
}

// changedFields reports each field of struct values prev and cur that
// differs, by its JSON path under path. A list that is empty on both sides is
// unchanged, nil or not.
func changedFields(path string, prev, cur reflect.Value) errorList {
	var errs errorList
	t := prev.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name := jsonName(f)
		if name == "" {
			continue
		}
		pv, cv := prev.Field(i), cur.Field(i)
		if pv.Kind() == reflect.Slice && pv.Len() == 0 && cv.Len() == 0 {
			continue
		}
		if reflect.DeepEqual(pv.Interface(), cv.Interface()) {
			continue
		}
		fix := "remove it"
		if !pv.IsZero() {
			// The types under spec.provider are strings, numbers, booleans
			// and lists of strings, which JSON writes as a spec would.
			was, _ := json.Marshal(pv.Interface())
			fix = "set it back to " + string(was)
		}
		errs.add(child(path, name), "immutable once the cluster exists: "+fix+"; to use a different value, create a new cluster")
	}
	return errs
}
