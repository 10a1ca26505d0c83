package nodewatch

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	kubeinformers "k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2/ktesting"

	"github.com/samplecrd/samplecrd-controller/internal/syncbuf"
)

func node(name, rv string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, ResourceVersion: rv}}
}

func TestSyncNode(t *testing.T) {
	tests := []struct {
		name        string
		cached      *corev1.Node
		printed     map[string]string
		want        string
		wantPrinted map[string]string
	}{
		{name: "new node", cached: node("a", "1"), printed: map[string]string{},
			want: "add a node: a\n", wantPrinted: map[string]string{"a": "1"}},
		{name: "changed node", cached: node("a", "2"), printed: map[string]string{"a": "1"},
			want: "update a node: a\n", wantPrinted: map[string]string{"a": "2"}},
		{name: "unchanged node (resync, or in the node list already)", cached: node("a", "1"), printed: map[string]string{"a": "1"},
			wantPrinted: map[string]string{"a": "1"}},
		{name: "deleted node", printed: map[string]string{"a": "1", "b": "1"},
			want: "delete a node: a\n", wantPrinted: map[string]string{"b": "1"}},
		{name: "added and deleted before it was printed", printed: map[string]string{},
			wantPrinted: map[string]string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			informers := kubeinformers.NewSharedInformerFactory(fake.NewClientset(), 0)
			out := &bytes.Buffer{}
			c, err := NewController(ctx, informers.Core().V1().Nodes(), out, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer c.queue.ShutDown()
			if tc.cached != nil {
				if err := informers.Core().V1().Nodes().Informer().GetIndexer().Add(tc.cached); err != nil {
					t.Fatal(err)
				}
			}
			c.printed = tc.printed
			if err := c.syncNode(ctx, cache.ObjectName{Name: "a"}); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, out.String()); diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantPrinted, c.printed); diff != "" {
				t.Errorf("printed (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRun runs the controller on a fake clientset: the node list comes first, sorted, and the
// nodes in it are not printed again as adds; later adds and deletes each print one line.
func TestRun(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	client := fake.NewClientset(node("b", "1"), node("a", "1"))
	informers := kubeinformers.NewSharedInformerFactory(client, 0)
	out := &syncbuf.Buffer{}
	c, err := NewController(ctx, informers.Core().V1().Nodes(), out, Options{})
	if err != nil {
		t.Fatal(err)
	}
	informers.Start(ctx.Done())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(ctx)
	}()
	defer func() {
		cancel()
		<-done
		informers.Shutdown()
	}()

	waitFor := func(s string) {
		t.Helper()
		err := wait.PollUntilContextTimeout(context.Background(), 5*time.Millisecond, 30*time.Second, true,
			func(context.Context) (bool, error) { return strings.Contains(out.String(), s), nil })
		if err != nil {
			t.Fatalf("waiting for %q in the output:\n%s", s, out.String())
		}
	}
	waitFor("nodelist: a b\n")
	if _, err := client.CoreV1().Nodes().Create(ctx, node("c", ""), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("add a node: c\n")
	if err := client.CoreV1().Nodes().Delete(ctx, "c", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("delete a node: c\n")
	want := "nodelist: a b\nadd a node: c\ndelete a node: c\n"
	if diff := cmp.Diff(want, out.String()); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
}
