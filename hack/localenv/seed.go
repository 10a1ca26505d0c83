package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
	clientset "github.com/samplecrd/samplecrd-controller/pkg/generated/clientset/versioned"
	"github.com/samplecrd/samplecrd-controller/pkg/generated/clientset/versioned/scheme"
)

// The objects the environment creates.
const (
	// nodeName is the control-plane Node. No kubelet runs: the object is there for the podcount
	// controller, which labels control-plane nodes with the number of pods.
	nodeName = "local-control-plane"
	// podCount is how many pods are created in the default namespace. No scheduler or kubelet
	// runs, so they stay Pending; they are there to be counted and watched.
	podCount = 3
	// exampleFile is the example Network, applied unchanged.
	exampleFile = "examples/example-network.yaml"
	// exampleNetworkName is its name, which the pods ask for.
	exampleNetworkName = "example-network"
)

// seed creates the control-plane Node, the pods and the example Network.
func seed(ctx context.Context, cfg *rest.Config) error {
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	client, err := clientset.NewForConfig(cfg)
	if err != nil {
		return err
	}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{
		Name: nodeName,
		Labels: map[string]string{
			"node-role.kubernetes.io/control-plane": "",
			corev1.LabelHostname:                    nodeName,
		},
	}}
	if _, err := kube.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating the node %s: %w", nodeName, err)
	}
	for i := 1; i <= podCount; i++ {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{
				Name:      fmt.Sprintf("demo-%d", i),
				Namespace: metav1.NamespaceDefault,
				Labels:    map[string]string{"app": "demo"},
				// Attached to the example Network by the podnetwork controller.
				Annotations: map[string]string{samplecrdv1.NetworkAnnotation: exampleNetworkName},
			},
			Spec: corev1.PodSpec{
				NodeName:   nodeName,
				Containers: []corev1.Container{{Name: "pause", Image: "registry.k8s.io/pause:3.10"}},
			},
		}
		if _, err := kube.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating the pod %s: %w", pod.Name, err)
		}
	}
	network, err := readNetwork(exampleFile)
	if err != nil {
		return err
	}
	if _, err := client.SamplecrdV1().Networks(network.Namespace).Create(ctx, network, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating the Network in %s: %w", exampleFile, err)
	}
	return nil
}

// readNetwork decodes a Network manifest, checking its apiVersion and kind.
func readNetwork(path string) (*samplecrdv1.Network, error) {
	data, err := os.ReadFile(filepath.Clean(path))
	if err != nil {
		return nil, err
	}
	obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(data, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("decoding %s: %w", path, err)
	}
	network, ok := obj.(*samplecrdv1.Network)
	if !ok {
		return nil, fmt.Errorf("%s holds a %T, not a Network", path, obj)
	}
	if network.Namespace == "" {
		network.Namespace = metav1.NamespaceDefault
	}
	return network, nil
}
