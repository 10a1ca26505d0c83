package networkapi

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/kubernetes"

	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
	clientset "github.com/samplecrd/samplecrd-controller/pkg/generated/clientset/versioned"
	"github.com/samplecrd/samplecrd-controller/pkg/generated/clientset/versioned/scheme"
	"github.com/samplecrd/samplecrd-controller/test/integration/framework"
)

// seedExample is the tutorial's example-network.yaml, byte for byte.
const seedExample = `apiVersion: samplecrd.k8s.io/v1
kind: Network
metadata:
  name: example-network
spec:
  cidr: "192.168.0.0/16"
  gateway: "192.168.0.1"
`

func TestSeedExampleIsAcceptedUnchanged(t *testing.T) {
	cfg := env.Config(t)
	ctx := context.Background()
	raw, err := os.ReadFile(filepath.Join(framework.RepoRoot(), "examples", "example-network.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(seedExample, string(raw)); diff != "" {
		t.Fatalf("examples/example-network.yaml differs from the tutorial's (-want +got):\n%s", diff)
	}
	obj, _, err := serializer.NewCodecFactory(scheme.Scheme).UniversalDeserializer().Decode(raw, nil, nil)
	if err != nil {
		t.Fatalf("decoding the example: %v", err)
	}
	network, ok := obj.(*samplecrdv1.Network)
	if !ok {
		t.Fatalf("the example decoded to %T, want *v1.Network", obj)
	}
	ns := framework.CreateNamespace(t, kubernetes.NewForConfigOrDie(cfg))
	created, err := clientset.NewForConfigOrDie(cfg).SamplecrdV1().Networks(ns).Create(ctx, network, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("the API server refused the tutorial's example: %v", err)
	}
	want := samplecrdv1.NetworkSpec{Cidr: "192.168.0.0/16", Gateway: "192.168.0.1"}
	if diff := cmp.Diff(want, created.Spec); diff != "" {
		t.Errorf("stored spec (-want +got):\n%s", diff)
	}
}

func TestDiscovery(t *testing.T) {
	cfg := env.Config(t)
	resources, err := kubernetes.NewForConfigOrDie(cfg).Discovery().ServerResourcesForGroupVersion("samplecrd.k8s.io/v1")
	if err != nil {
		t.Fatalf("discovery of samplecrd.k8s.io/v1: %v", err)
	}
	var names []string
	var networks *metav1.APIResource
	for i := range resources.APIResources {
		r := &resources.APIResources[i]
		names = append(names, r.Name)
		if r.Name == "networks" {
			networks = r
		}
	}
	if diff := cmp.Diff([]string{"networks", "networks/status"}, names); diff != "" {
		t.Errorf("resources (-want +got):\n%s", diff)
	}
	if networks == nil {
		t.Fatal("discovery does not list networks")
	}
	got := struct {
		Kind       string
		Namespaced bool
		ShortNames []string
		Categories []string
	}{networks.Kind, networks.Namespaced, networks.ShortNames, networks.Categories}
	want := got
	want.Kind, want.Namespaced, want.ShortNames, want.Categories = "Network", true, []string{"net"}, []string{"samplecrd"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("networks in discovery (-want +got):\n%s", diff)
	}
}

// TestPrinterColumns asks the API server for the table a kubectl get prints.
func TestPrinterColumns(t *testing.T) {
	cfg := env.Config(t)
	ctx := context.Background()
	ns := framework.CreateNamespace(t, kubernetes.NewForConfigOrDie(cfg))
	client := clientset.NewForConfigOrDie(cfg)
	_, err := client.SamplecrdV1().Networks(ns).Create(ctx, &samplecrdv1.Network{
		ObjectMeta: metav1.ObjectMeta{Name: "columns"},
		Spec:       samplecrdv1.NetworkSpec{Cidr: "10.1.0.0/24", Gateway: "10.1.0.1"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var table metav1.Table
	err = client.SamplecrdV1().RESTClient().Get().Namespace(ns).Resource("networks").
		SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").Do(ctx).Into(&table)
	if err != nil {
		t.Fatalf("listing networks as a table: %v", err)
	}
	var columns, wide []string
	for _, c := range table.ColumnDefinitions {
		if c.Priority == 0 {
			columns = append(columns, c.Name)
		} else {
			wide = append(wide, c.Name)
		}
	}
	if diff := cmp.Diff([]string{"Name", "CIDR", "Gateway", "Ready", "Used", "Available", "Age"}, columns); diff != "" {
		t.Errorf("printer columns (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"Reason", "Total"}, wide); diff != "" {
		t.Errorf("printer columns of -o wide (-want +got):\n%s", diff)
	}
	if len(table.Rows) != 1 {
		t.Fatalf("table has %d rows, want 1", len(table.Rows))
	}
	cidr := slices.IndexFunc(table.ColumnDefinitions, func(c metav1.TableColumnDefinition) bool { return c.Name == "CIDR" })
	if got := table.Rows[0].Cells[cidr]; got != "10.1.0.0/24" {
		t.Errorf("CIDR cell = %v, want 10.1.0.0/24", got)
	}
}
