package manager

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/samplecrd/samplecrd-controller/test/integration/framework"
)

// TestSeedLines checks that podwatch and nodewatch print the tutorials' lines.
func TestSeedLines(t *testing.T) {
	client := env.KubeClient(t)
	ctx := context.Background()
	ns := framework.CreateNamespace(t, client)
	createNode(t, client, "watched-1", nil)

	m := startManager(t, "manager", "--controllers=podwatch,nodewatch", "--leader-elect=false", "--podwatch-namespace="+ns)
	m.WaitForOutput(t, "nodelist:", timeout)
	m.WaitForOutput(t, "watched-1", timeout)

	createNode(t, client, "watched-2", nil)
	m.WaitForOutput(t, "add a node: watched-2\n", timeout)
	if err := client.CoreV1().Nodes().Delete(ctx, "watched-2", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	m.WaitForOutput(t, "delete a node: watched-2\n", timeout)

	createPods(t, client, ns, "mypod", 1)
	m.WaitForOutput(t, "Sync/Add/Update for Pod mypod-0\n", timeout)
	if err := client.CoreV1().Pods(ns).Delete(ctx, "mypod-0", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	m.WaitForOutput(t, "Pod "+ns+"/mypod-0 does not exist anymore\n", timeout)
}
