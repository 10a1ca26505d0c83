package podcount

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	kubeinformers "k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	metadatafake "k8s.io/client-go/metadata/fake"
	"k8s.io/client-go/metadata/metadatainformer"
	core "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2/ktesting"
	testingclock "k8s.io/utils/clock/testing"
)

var podsResource = corev1.SchemeGroupVersion.WithResource("pods")

func pod(ns, name string) *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(ns + "-" + name)},
	}
}

func node(name string, labels map[string]string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels, ResourceVersion: "1"}}
}

type fixture struct {
	c        *Controller
	pods     cache.Indexer
	nodes    cache.Indexer
	client   *fake.Clientset
	recorder *record.FakeRecorder
	clock    *testingclock.FakeClock
}

// newFixture builds a controller whose caches hold pods and nodes, and whose client knows the nodes.
func newFixture(t *testing.T, mode EventMode, pods []*metav1.PartialObjectMetadata, nodes []*corev1.Node) *fixture {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	var objs []runtime.Object
	for _, n := range nodes {
		objs = append(objs, n)
	}
	client := fake.NewClientset(objs...)
	kubeInformers := kubeinformers.NewSharedInformerFactory(client, 0)
	scheme := runtime.NewScheme()
	_ = metav1.AddMetaToScheme(scheme)
	metadataInformers := metadatainformer.NewSharedInformerFactory(metadatafake.NewSimpleMetadataClient(scheme), 0)
	podInformer := metadataInformers.ForResource(podsResource)
	recorder := record.NewFakeRecorder(1000)
	clk := testingclock.NewFakeClock(time.Now())
	c, err := NewController(ctx, client, podInformer, kubeInformers.Core().V1().Nodes(), recorder,
		Options{EventMode: mode, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods {
		if err := podInformer.Informer().GetIndexer().Add(p); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range nodes {
		if err := kubeInformers.Core().V1().Nodes().Informer().GetIndexer().Add(n); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(c.queue.ShutDown)
	return &fixture{c: c, client: client, recorder: recorder, clock: clk,
		pods: podInformer.Informer().GetIndexer(), nodes: kubeInformers.Core().V1().Nodes().Informer().GetIndexer()}
}

// patches returns "node: patch" for every node patch the client received.
func (f *fixture) patches() []string {
	var out []string
	for _, a := range f.client.Actions() {
		if p, ok := a.(core.PatchAction); ok {
			out = append(out, p.GetName()+": "+string(p.GetPatch()))
		}
	}
	sort.Strings(out)
	return out
}

// events drains the recorded events.
func (f *fixture) events() []string {
	var out []string
	for {
		select {
		case e := <-f.recorder.Events:
			out = append(out, e)
		default:
			sort.Strings(out)
			return out
		}
	}
}

func TestSyncCount(t *testing.T) {
	threePods := []*metav1.PartialObjectMetadata{pod("a", "p1"), pod("a", "p2"), pod("b", "p3")}
	cp := map[string]string{ControlPlaneLabel: ""}
	master := map[string]string{MasterLabel: ""}
	labelled := func(role map[string]string, count string) map[string]string {
		l := map[string]string{DefaultLabelKey: count}
		for k, v := range role {
			l[k] = v
		}
		return l
	}
	const patch3 = `{"metadata":{"labels":{"hopegi/pod-count":"3"}}}`
	tests := []struct {
		name        string
		mode        EventMode
		pods        []*metav1.PartialObjectMetadata
		nodes       []*corev1.Node
		patchErr    error
		wantPatches []string
		wantEvents  []string
		wantErr     string
	}{
		{
			name:  "no nodes: nothing to write",
			mode:  EventsChanged,
			pods:  threePods,
			nodes: nil,
		},
		{
			name:        "control-plane and master nodes labelled, workers left alone",
			mode:        EventsChanged,
			pods:        threePods,
			nodes:       []*corev1.Node{node("cp", cp), node("old", master), node("worker", map[string]string{"node-role.kubernetes.io/worker": ""})},
			wantPatches: []string{"cp: " + patch3, "old: " + patch3},
			wantEvents:  []string{"Normal SuccessCalculatePod pod count is 3", "Normal SuccessCalculatePod pod count is 3"},
		},
		{
			name:  "label already right: no write, no event",
			mode:  EventsChanged,
			pods:  threePods,
			nodes: []*corev1.Node{node("cp", labelled(cp, "3"))},
		},
		{
			name:        "stale label replaced",
			mode:        EventsChanged,
			pods:        threePods,
			nodes:       []*corev1.Node{node("cp", labelled(cp, "7"))},
			wantPatches: []string{"cp: " + patch3},
			wantEvents:  []string{"Normal SuccessCalculatePod pod count is 3"},
		},
		{
			name:        "zero pods",
			mode:        EventsChanged,
			nodes:       []*corev1.Node{node("cp", labelled(cp, "7"))},
			wantPatches: []string{`cp: {"metadata":{"labels":{"hopegi/pod-count":"0"}}}`},
			wantEvents:  []string{"Normal SuccessCalculatePod pod count is 0"},
		},
		{
			name:  "mode all: an event on every pod every pass, even when nothing changed",
			mode:  EventsAll,
			pods:  threePods,
			nodes: []*corev1.Node{node("cp", labelled(cp, "3"))},
			wantEvents: []string{
				"Normal SuccessCalculatePod pod count is 3",
				"Normal SuccessCalculatePod pod count is 3",
				"Normal SuccessCalculatePod pod count is 3",
			},
		},
		{
			name:        "mode none: the label, no events",
			mode:        EventsNone,
			pods:        threePods,
			nodes:       []*corev1.Node{node("cp", cp)},
			wantPatches: []string{"cp: " + patch3},
		},
		{
			name:        "patch fails: a warning on the node and an error to retry",
			mode:        EventsChanged,
			pods:        threePods,
			nodes:       []*corev1.Node{node("cp", cp)},
			patchErr:    errors.New("etcd is on fire"),
			wantPatches: []string{"cp: " + patch3},
			wantEvents:  []string{"Warning LabelFailed Setting hopegi/pod-count=3 failed: etcd is on fire"},
			wantErr:     "labelling node cp: etcd is on fire",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.mode, tc.pods, tc.nodes)
			if tc.patchErr != nil {
				f.client.PrependReactor("patch", "nodes", func(core.Action) (bool, runtime.Object, error) {
					return true, nil, tc.patchErr
				})
			}
			_, ctx := ktesting.NewTestContext(t)
			err := f.c.syncCount(ctx)
			if gotErr := errString(err); gotErr != tc.wantErr {
				t.Errorf("error = %q, want %q", gotErr, tc.wantErr)
			}
			if diff := cmp.Diff(tc.wantPatches, f.patches()); diff != "" {
				t.Errorf("patches (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantEvents, f.events()); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSyncCountPatchesOnlyTheLabel checks that the patch written leaves every other label alone,
// and that a second pass over the patched node writes nothing.
func TestSyncCountPatchesOnlyTheLabel(t *testing.T) {
	f := newFixture(t, EventsChanged, []*metav1.PartialObjectMetadata{pod("a", "p1")},
		[]*corev1.Node{node("cp", map[string]string{ControlPlaneLabel: "", "zone": "z1"})})
	_, ctx := ktesting.NewTestContext(t)
	if err := f.c.syncCount(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := f.client.CoreV1().Nodes().Get(ctx, "cp", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{ControlPlaneLabel: "", "zone": "z1", DefaultLabelKey: "1"}
	if diff := cmp.Diff(want, got.Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"Normal SuccessCalculatePod pod count is 1"}, f.events()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}

	// Once the cache sees the written node, the next pass writes nothing and records nothing.
	if err := f.nodes.Update(got); err != nil {
		t.Fatal(err)
	}
	f.client.ClearActions()
	if err := f.c.syncCount(ctx); err != nil {
		t.Fatal(err)
	}
	if p := f.patches(); len(p) != 0 {
		t.Errorf("second pass patched: %v", p)
	}
	if e := f.events(); len(e) != 0 {
		t.Errorf("second pass recorded events: %v", e)
	}
}

// TestPodChangesCoalesce checks that a burst of pod adds and deletes makes one count, due after
// the coalescing delay, and that pod updates make none.
func TestPodChangesCoalesce(t *testing.T) {
	f := newFixture(t, EventsChanged, nil, nil)
	for i := range 100 {
		p := pod("a", fmt.Sprintf("p%d", i))
		f.c.addPodOrDelete(p)
	}
	if n := f.c.queue.Len(); n != 0 {
		t.Fatalf("queue has %d items before the coalescing delay; want 0", n)
	}
	f.clock.Step(DefaultCoalesce)
	waitForQueueLen(t, f.c, 1)
	key, _ := f.c.queue.Get()
	if key != countKey {
		t.Errorf("queued key %v, want %v", key, countKey)
	}
	f.c.queue.Done(key)
	if n := f.c.queue.Len(); n != 0 {
		t.Errorf("queue has %d items after the count was taken; want 0", n)
	}

	// Once a count has started, the next pod change asks for another one.
	_, ctx := ktesting.NewTestContext(t)
	if err := f.c.syncCount(ctx); err != nil {
		t.Fatal(err)
	}
	f.c.addPodOrDelete(pod("a", "late"))
	f.clock.Step(DefaultCoalesce)
	waitForQueueLen(t, f.c, 1)
}

func waitForQueueLen(t *testing.T, c *Controller, want int) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), time.Millisecond, 10*time.Second, true,
		func(context.Context) (bool, error) { return c.queue.Len() == want, nil })
	if err != nil {
		t.Fatalf("queue length is %d, want %d: %v", c.queue.Len(), want, err)
	}
}

func TestNodeHandlers(t *testing.T) {
	cp := map[string]string{ControlPlaneLabel: ""}
	withRV := func(n *corev1.Node, rv string) *corev1.Node {
		n = n.DeepCopy()
		n.ResourceVersion = rv
		return n
	}
	tests := []struct {
		name     string
		old, new *corev1.Node
		want     bool
	}{
		{name: "add control-plane node", new: node("cp", cp), want: true},
		{name: "add worker", new: node("w", nil)},
		{name: "worker becomes control plane", old: node("n", nil), new: withRV(node("n", cp), "2"), want: true},
		{name: "label changed by someone else", old: node("n", map[string]string{ControlPlaneLabel: "", DefaultLabelKey: "3"}),
			new: withRV(node("n", map[string]string{ControlPlaneLabel: "", DefaultLabelKey: "9"}), "2"), want: true},
		{name: "status update of a control-plane node", old: node("n", cp), new: withRV(node("n", cp), "2")},
		{name: "resync", old: node("n", cp), new: node("n", cp)},
		{name: "update of a worker", old: node("n", nil), new: withRV(node("n", map[string]string{DefaultLabelKey: "1"}), "2")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, EventsChanged, nil, nil)
			if tc.old == nil {
				f.c.addNode(tc.new)
			} else {
				f.c.updateNode(tc.old, tc.new)
			}
			if got := f.c.queue.Len() == 1; got != tc.want {
				t.Errorf("count queued = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestNewControllerRejectsUnknownEventMode(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	client := fake.NewClientset()
	scheme := runtime.NewScheme()
	_ = metav1.AddMetaToScheme(scheme)
	pods := metadatainformer.NewSharedInformerFactory(metadatafake.NewSimpleMetadataClient(scheme), 0).ForResource(podsResource)
	_, err := NewController(ctx, client, pods, kubeinformers.NewSharedInformerFactory(client, 0).Core().V1().Nodes(),
		record.NewFakeRecorder(1), Options{EventMode: "some"})
	if err == nil || !strings.Contains(err.Error(), `unknown event mode "some"`) {
		t.Errorf("error = %v, want one naming the unknown mode", err)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestTrimToIdentity(t *testing.T) {
	in := &metav1.PartialObjectMetadata{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "ns", Name: "p", UID: "u", ResourceVersion: "7",
			Labels:          map[string]string{"app": "x"},
			Annotations:     map[string]string{"big": strings.Repeat("a", 1000)},
			OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "rs"}},
			ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "kubelet"}},
		},
	}
	got, err := TrimToIdentity(in)
	if err != nil {
		t.Fatal(err)
	}
	want := &metav1.PartialObjectMetadata{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", UID: "u", ResourceVersion: "7"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("trimmed (-want +got):\n%s", diff)
	}
	tombstone := cache.DeletedFinalStateUnknown{Key: "ns/p"}
	if got, _ := TrimToIdentity(tombstone); got != tombstone {
		t.Errorf("a tombstone was changed: %v", got)
	}
}
