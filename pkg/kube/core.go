package kube

import (
	"context"
	"encoding/json"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"
)

// Core makes the few core-group (v1) reads the seed needs, the requests
// client-go's typed CoreV1 client makes, and decodes the fields the seed
// reads into the views below.
//
// It is neither that client nor k8s.io/api/core/v1, to keep the seed small.
// Every client-go typed client links google.golang.org/protobuf (through its
// apply configurations), whose MethodByName("Methods") keeps
// reflect.Value.Methods, which looks methods up by index: the linker then
// keeps every exported method of every type in the binary. And importing
// k8s.io/api/core/v1 at all registers its ~240 types with gogo protobuf,
// about 3 MB of the binary, for a dozen fields.
type Core struct {
	client rest.Interface
}

// Namespace is what the seed reads of a core/v1 Namespace.
type Namespace struct {
	metav1.ObjectMeta `json:"metadata"`
}

// ConfigMap is what the seed reads of a core/v1 ConfigMap.
type ConfigMap struct {
	metav1.ObjectMeta `json:"metadata"`
	Data              map[string]string `json:"data,omitempty"`
}

// PodList is what the seed reads of a core/v1 PodList.
type PodList struct {
	Items []Pod `json:"items"`
}

// Pod is what the seed reads of a core/v1 Pod.
type Pod struct {
	metav1.ObjectMeta `json:"metadata"`
	Spec              PodSpec   `json:"spec"`
	Status            PodStatus `json:"status"`
}

// PodSpec is what the seed reads of a core/v1 PodSpec.
type PodSpec struct {
	NodeName string `json:"nodeName,omitempty"`
}

// PodStatus is what the seed reads of a core/v1 PodStatus.
type PodStatus struct {
	Phase             string            `json:"phase,omitempty"`
	ContainerStatuses []ContainerStatus `json:"containerStatuses,omitempty"`
}

// ContainerStatus is what the seed reads of a core/v1 ContainerStatus.
type ContainerStatus struct {
	Name  string         `json:"name"`
	State ContainerState `json:"state"`
}

// ContainerState is what the seed reads of a core/v1 ContainerState.
type ContainerState struct {
	Waiting *ContainerStateWaiting `json:"waiting,omitempty"`
}

// ContainerStateWaiting is a core/v1 ContainerStateWaiting.
type ContainerStateWaiting struct {
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
}

// NewCore returns a Core for the cluster cfg points at.
func NewCore(cfg *rest.Config) (*Core, error) {
	c, err := newCoreREST(cfg)
	if err != nil {
		return nil, err
	}
	return &Core{client: c}, nil
}

// newCoreREST is a REST client for /api/v1 that asks for JSON, and decodes
// the API server's errors into *errors.StatusError as client-go's typed
// clients do (so errors.IsNotFound works on what it returns).
func newCoreREST(cfg *rest.Config) (*rest.RESTClient, error) {
	scheme := runtime.NewScheme()
	gv := schema.GroupVersion{Version: "v1"}
	metav1.AddToGroupVersion(scheme, gv)
	c := rest.CopyConfig(cfg)
	c.APIPath = "/api"
	c.GroupVersion = &gv
	c.ContentType, c.AcceptContentTypes = runtime.ContentTypeJSON, runtime.ContentTypeJSON
	c.NegotiatedSerializer = serializer.NewCodecFactory(scheme).WithoutConversion()
	if c.UserAgent == "" {
		c.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	client, err := rest.RESTClientFor(c)
	if err != nil {
		return nil, fmt.Errorf("creating core client: %w", err)
	}
	return client, nil
}

// getJSON sends r and decodes the JSON answer into out.
func getJSON(ctx context.Context, r *rest.Request, out any) error {
	body, err := r.DoRaw(ctx)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("decoding %s: %w", r.URL().Path, err)
	}
	return nil
}

// Ready asks the API server's /readyz; it fails until the server is ready.
func (c *Core) Ready(ctx context.Context) error {
	_, err := c.client.Get().AbsPath("/readyz").DoRaw(ctx)
	return err
}

// GetNamespace reads a Namespace.
func (c *Core) GetNamespace(ctx context.Context, name string) (*Namespace, error) {
	ns := &Namespace{}
	return ns, getJSON(ctx, c.client.Get().Resource("namespaces").Name(name), ns)
}

// GetConfigMap reads a ConfigMap.
func (c *Core) GetConfigMap(ctx context.Context, namespace, name string) (*ConfigMap, error) {
	cm := &ConfigMap{}
	return cm, getJSON(ctx, c.client.Get().Namespace(namespace).Resource("configmaps").Name(name), cm)
}

// ListPods lists a namespace's Pods that match a label selector (all of
// them when it is empty).
func (c *Core) ListPods(ctx context.Context, namespace, labelSelector string) (*PodList, error) {
	r := c.client.Get().Namespace(namespace).Resource("pods")
	if labelSelector != "" {
		r = r.Param("labelSelector", labelSelector)
	}
	pods := &PodList{}
	return pods, getJSON(ctx, r, pods)
}

// configMapWrite is a ConfigMap as the seed writes it: with its kind, so
// the API server need not guess it.
type configMapWrite struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	*ConfigMap
}

// CreateConfigMap creates a ConfigMap; one that exists already is an
// *errors.StatusError for which errors.IsAlreadyExists holds.
func (c *Core) CreateConfigMap(ctx context.Context, cm *ConfigMap) (*ConfigMap, error) {
	return c.writeConfigMap(ctx, c.client.Post().Namespace(cm.Namespace).Resource("configmaps"), cm)
}

// UpdateConfigMap replaces a ConfigMap. With cm.ResourceVersion set, it
// fails with a conflict (errors.IsConflict) when someone wrote in between.
func (c *Core) UpdateConfigMap(ctx context.Context, cm *ConfigMap) (*ConfigMap, error) {
	return c.writeConfigMap(ctx, c.client.Put().Namespace(cm.Namespace).Resource("configmaps").Name(cm.Name), cm)
}

func (c *Core) writeConfigMap(ctx context.Context, r *rest.Request, cm *ConfigMap) (*ConfigMap, error) {
	body, err := json.Marshal(configMapWrite{APIVersion: "v1", Kind: "ConfigMap", ConfigMap: cm})
	if err != nil {
		return nil, fmt.Errorf("encoding ConfigMap %s/%s: %w", cm.Namespace, cm.Name, err)
	}
	out := &ConfigMap{}
	return out, getJSON(ctx, r.Param("fieldManager", "seed").SetHeader("Content-Type", "application/json").Body(body), out)
}

// NodeList is what the seed reads of a core/v1 NodeList.
type NodeList struct {
	Items []Node `json:"items"`
}

// Node is what the seed reads of a core/v1 Node.
type Node struct {
	metav1.ObjectMeta `json:"metadata"`
	Spec              NodeSpec   `json:"spec"`
	Status            NodeStatus `json:"status"`
}

// NodeSpec is what the seed reads of a core/v1 NodeSpec.
type NodeSpec struct {
	Unschedulable bool `json:"unschedulable,omitempty"`
}

// NodeStatus is what the seed reads of a core/v1 NodeStatus.
type NodeStatus struct {
	Conditions []NodeCondition `json:"conditions,omitempty"`
	NodeInfo   NodeSystemInfo  `json:"nodeInfo"`
}

// NodeCondition is what the seed reads of a core/v1 NodeCondition.
type NodeCondition struct {
	Type               string      `json:"type"`
	Status             string      `json:"status"`
	LastTransitionTime metav1.Time `json:"lastTransitionTime,omitempty"`
}

// NodeSystemInfo is what the seed reads of a core/v1 NodeSystemInfo.
type NodeSystemInfo struct {
	KubeletVersion string `json:"kubeletVersion"`
}

// ListNodes lists the cluster's Nodes.
func (c *Core) ListNodes(ctx context.Context) (*NodeList, error) {
	nodes := &NodeList{}
	return nodes, getJSON(ctx, c.client.Get().Resource("nodes"), nodes)
}

// ServerVersion is the API server's gitVersion (/version).
func (c *Core) ServerVersion(ctx context.Context) (string, error) {
	var v struct {
		GitVersion string `json:"gitVersion"`
	}
	return v.GitVersion, getJSON(ctx, c.client.Get().AbsPath("/version"), &v)
}
