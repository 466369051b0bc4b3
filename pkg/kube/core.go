package kube

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"
)

// Core makes the few core-group (v1) requests the seed needs, the same
// requests client-go's typed CoreV1 client makes. It is not that client
// because every client-go typed client links google.golang.org/protobuf
// (through its apply configurations), and the linker then keeps every
// exported method in the binary: protobuf looks a method up by the name
// "Methods", which matches reflect.Value.Methods, and that one looks
// methods up by index.
type Core struct {
	client rest.Interface
	params runtime.ParameterCodec
}

// NewCore returns a Core for the cluster cfg points at.
func NewCore(cfg *rest.Config) (*Core, error) {
	c, params, err := newCoreREST(cfg)
	if err != nil {
		return nil, err
	}
	return &Core{client: c, params: params}, nil
}

// newCoreREST is a REST client for /api/v1 that decodes core objects and
// the API server's discovery documents, configured as client-go's
// generated clients configure theirs, and the codec for request options.
func newCoreREST(cfg *rest.Config) (*rest.RESTClient, runtime.ParameterCodec, error) {
	scheme := runtime.NewScheme()
	// Registers the meta types too: options, Status, the discovery lists.
	if err := corev1.AddToScheme(scheme); err != nil {
		return nil, nil, fmt.Errorf("registering core types: %w", err)
	}
	c := rest.CopyConfig(cfg)
	c.APIPath = "/api"
	c.GroupVersion = &corev1.SchemeGroupVersion
	c.NegotiatedSerializer = rest.CodecFactoryForGeneratedClient(scheme, serializer.NewCodecFactory(scheme)).WithoutConversion()
	if c.UserAgent == "" {
		c.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	client, err := rest.RESTClientFor(c)
	if err != nil {
		return nil, nil, fmt.Errorf("creating core client: %w", err)
	}
	return client, runtime.NewParameterCodec(scheme), nil
}

// Ready asks the API server's /readyz; it fails until the server is ready.
func (c *Core) Ready(ctx context.Context) error {
	_, err := c.client.Get().AbsPath("/readyz").DoRaw(ctx)
	return err
}

// GetNamespace reads a Namespace.
func (c *Core) GetNamespace(ctx context.Context, name string) (*corev1.Namespace, error) {
	ns := &corev1.Namespace{}
	return ns, c.client.Get().Resource("namespaces").Name(name).
		VersionedParams(&metav1.GetOptions{}, c.params).Do(ctx).Into(ns)
}

// GetConfigMap reads a ConfigMap.
func (c *Core) GetConfigMap(ctx context.Context, namespace, name string) (*corev1.ConfigMap, error) {
	cm := &corev1.ConfigMap{}
	return cm, c.client.Get().Namespace(namespace).Resource("configmaps").Name(name).
		VersionedParams(&metav1.GetOptions{}, c.params).Do(ctx).Into(cm)
}

// ListPods lists a namespace's Pods that match a label selector.
func (c *Core) ListPods(ctx context.Context, namespace, labelSelector string) (*corev1.PodList, error) {
	pods := &corev1.PodList{}
	return pods, c.client.Get().Namespace(namespace).Resource("pods").
		VersionedParams(&metav1.ListOptions{LabelSelector: labelSelector}, c.params).Do(ctx).Into(pods)
}
