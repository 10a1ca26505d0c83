package networkapi

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
	applyv1 "github.com/samplecrd/samplecrd-controller/pkg/generated/applyconfiguration/samplecrd/v1"
	clientset "github.com/samplecrd/samplecrd-controller/pkg/generated/clientset/versioned"
	informers "github.com/samplecrd/samplecrd-controller/pkg/generated/informers/externalversions"
	"github.com/samplecrd/samplecrd-controller/test/integration/framework"
)

// event is what the informer delivered to its handler.
type event struct {
	kind    string // add, update or delete
	name    string
	gateway string
	ready   metav1.ConditionStatus
}

func toEvent(kind string, obj any) event {
	if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tombstone.Obj
	}
	n := obj.(*samplecrdv1.Network)
	e := event{kind: kind, name: n.Name, gateway: n.Spec.Gateway}
	if c := meta.FindStatusCondition(n.Status.Conditions, samplecrdv1.ConditionReady); c != nil {
		e.ready = c.Status
	}
	return e
}

// TestClientInformerLister drives the generated clientset, shared informer factory, lister and apply
// configurations through one Network's life against the real API server.
func TestClientInformerLister(t *testing.T) {
	cfg := env.Config(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ns := framework.CreateNamespace(t, kubernetes.NewForConfigOrDie(cfg))
	client := clientset.NewForConfigOrDie(cfg)
	networks := client.SamplecrdV1().Networks(ns)

	factory := informers.NewSharedInformerFactoryWithOptions(client, 30*time.Second, informers.WithNamespace(ns))
	informer := factory.Samplecrd().V1().Networks()
	events := make(chan event, 100)
	_, err := informer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { events <- toEvent("add", obj) },
		UpdateFunc: func(old, cur any) {
			if old.(*samplecrdv1.Network).ResourceVersion != cur.(*samplecrdv1.Network).ResourceVersion {
				events <- toEvent("update", cur)
			}
		},
		DeleteFunc: func(obj any) { events <- toEvent("delete", obj) },
	})
	if err != nil {
		t.Fatal(err)
	}
	lister := informer.Lister().Networks(ns)
	factory.Start(ctx.Done())
	// Shutdown waits for the informers, which stop when ctx is cancelled: cancel first.
	defer func() {
		cancel()
		factory.Shutdown()
	}()
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			t.Fatalf("cache of %v did not sync", typ)
		}
	}

	// Create through the typed client; the lister sees it once the watch delivers it.
	created, err := networks.Create(ctx, &samplecrdv1.Network{
		ObjectMeta: metav1.ObjectMeta{Name: "lifecycle"},
		Spec:       samplecrdv1.NetworkSpec{Cidr: "10.20.0.0/16", Gateway: "10.20.0.1"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, "the lister to see the created network", func() bool {
		n, err := lister.Get("lifecycle")
		return err == nil && n.UID == created.UID
	})

	// A status written through the status subresource: the spec cannot change through it.
	withStatus := created.DeepCopy()
	withStatus.Spec.Gateway = "10.20.0.2"
	withStatus.Status.ObservedGeneration = created.Generation
	meta.SetStatusCondition(&withStatus.Status.Conditions, metav1.Condition{
		Type: samplecrdv1.ConditionReady, Status: metav1.ConditionTrue, Reason: samplecrdv1.ReasonSynced, Message: "test",
	})
	withStatus.Status.Backend = &samplecrdv1.NetworkBackendStatus{Type: "test", Name: "switch", ID: "1234"}
	updated, err := networks.UpdateStatus(ctx, withStatus, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("updating the status: %v", err)
	}
	if updated.Spec.Gateway != "10.20.0.1" {
		t.Errorf("the status subresource changed the spec: gateway %q", updated.Spec.Gateway)
	}
	if diff := cmp.Diff(withStatus.Status.Backend, updated.Status.Backend); diff != "" {
		t.Errorf("stored backend status (-want +got):\n%s", diff)
	}
	if updated.Generation != created.Generation {
		t.Errorf("a status write bumped the generation from %d to %d", created.Generation, updated.Generation)
	}
	waitFor(ctx, t, "the lister to see the Ready condition", func() bool {
		n, err := lister.Get("lifecycle")
		return err == nil && meta.IsStatusConditionTrue(n.Status.Conditions, samplecrdv1.ConditionReady)
	})

	// Server-side apply through the generated apply configurations changes the spec.
	applied, err := networks.Apply(ctx, applyv1.Network("lifecycle", ns).
		WithSpec(applyv1.NetworkSpec().WithCidr("10.20.0.0/16").WithGateway("10.20.0.254")),
		metav1.ApplyOptions{FieldManager: "integration-test", Force: true})
	if err != nil {
		t.Fatalf("applying a spec change: %v", err)
	}
	if applied.Generation != created.Generation+1 {
		t.Errorf("generation after a spec change = %d, want %d", applied.Generation, created.Generation+1)
	}
	// An invalid apply is refused by admission and changes nothing.
	if _, err := networks.Apply(ctx, applyv1.Network("lifecycle", ns).
		WithSpec(applyv1.NetworkSpec().WithCidr("10.20.0.0/16").WithGateway("10.21.0.1")),
		metav1.ApplyOptions{FieldManager: "integration-test", Force: true}); !apierrors.IsInvalid(err) {
		t.Errorf("applying a gateway outside the cidr: got %v, want Invalid", err)
	}

	if err := networks.Delete(ctx, "lifecycle", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, "the lister to forget the deleted network", func() bool {
		_, err := lister.Get("lifecycle")
		return apierrors.IsNotFound(err)
	})

	// The handler saw the whole life, in order.
	want := []event{
		{kind: "add", name: "lifecycle", gateway: "10.20.0.1"},
		{kind: "update", name: "lifecycle", gateway: "10.20.0.1", ready: metav1.ConditionTrue},
		{kind: "update", name: "lifecycle", gateway: "10.20.0.254", ready: metav1.ConditionTrue},
		{kind: "delete", name: "lifecycle", gateway: "10.20.0.254", ready: metav1.ConditionTrue},
	}
	var got []event
	for len(got) < len(want) {
		select {
		case e := <-events:
			got = append(got, e)
		case <-time.After(wait.ForeverTestTimeout):
			t.Fatalf("timed out waiting for watch events; got %+v", got)
		}
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(event{})); diff != "" {
		t.Errorf("watch events (-want +got):\n%s", diff)
	}
}

func waitFor(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, wait.ForeverTestTimeout, true, func(context.Context) (bool, error) {
		return cond(), nil
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}
