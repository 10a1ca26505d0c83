package faults

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
	clientset "github.com/samplecrd/samplecrd-controller/pkg/generated/clientset/versioned"
	informers "github.com/samplecrd/samplecrd-controller/pkg/generated/informers/externalversions"
)

// statusWrite is one change of a Network's status that the suite's watch saw.
type statusWrite struct {
	at time.Time
	// ready is the Ready condition written, "Status/Reason", "" without one.
	ready string
}

// tracker watches the Networks of a scenario's namespaces with an informer of its own, which
// relists after an API server or etcd restart, and records every change of their status: the
// manager is the only writer of the status, so each one is a status write of the manager's. (Writes
// the watch could not see, while the API server was down, could not be made either.)
type tracker struct {
	namespaces map[string]bool
	factory    informers.SharedInformerFactory
	informer   cache.SharedIndexInformer
	cancel     context.CancelFunc

	mu sync.Mutex
	// writes are the status writes seen, by Network UID.
	writes map[types.UID][]statusWrite
	// seen is the resourceVersion of each Network's last event handled. The informer's store
	// runs ahead of its handlers, which are called from a buffer of their own.
	seen map[types.UID]string
	// handledLast is each Network as its last event handled showed it: what the status writes
	// recorded so far add up to.
	handledLast map[types.UID]*samplecrdv1.Network
}

func startTracker(ctx context.Context, client clientset.Interface, namespaces []string) (*tracker, error) {
	ctx, cancel := context.WithCancel(ctx)
	tr := &tracker{
		namespaces: map[string]bool{},
		factory:    informers.NewSharedInformerFactory(client, 0),
		cancel:     cancel,
		writes:     map[types.UID][]statusWrite{},
		seen:       map[types.UID]string{},

		handledLast: map[types.UID]*samplecrdv1.Network{},
	}
	for _, ns := range namespaces {
		tr.namespaces[ns] = true
	}
	tr.informer = tr.factory.Samplecrd().V1().Networks().Informer()
	if _, err := tr.informer.AddEventHandler(cache.FilteringResourceEventHandler{
		FilterFunc: func(obj any) bool {
			n, ok := obj.(*samplecrdv1.Network)
			return ok && tr.namespaces[n.Namespace]
		},
		Handler: cache.ResourceEventHandlerFuncs{
			// A Network first seen with a status (after a relist, say) was written unseen.
			AddFunc: func(obj any) {
				n := obj.(*samplecrdv1.Network)
				tr.handled(n, !equality.Semantic.DeepEqual(n.Status, samplecrdv1.NetworkStatus{}))
			},
			UpdateFunc: func(old, obj any) {
				n := obj.(*samplecrdv1.Network)
				tr.handled(n, !equality.Semantic.DeepEqual(old.(*samplecrdv1.Network).Status, n.Status))
			},
		},
	}); err != nil {
		cancel()
		return nil, err
	}
	tr.factory.Start(ctx.Done())
	for typ, ok := range tr.factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			cancel()
			return nil, fmt.Errorf("the suite's watch of %v did not sync", typ)
		}
	}
	return tr, nil
}

// handled records an event of n, and a status write when written.
func (tr *tracker) handled(n *samplecrdv1.Network, written bool) {
	w := statusWrite{at: time.Now(), ready: readyText(n, false)}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.seen[n.UID] = n.ResourceVersion
	tr.handledLast[n.UID] = n
	if written {
		tr.writes[n.UID] = append(tr.writes[n.UID], w)
	}
}

// seenVersions returns the resourceVersion of each Network's last event handled.
func (tr *tracker) seenVersions() map[types.UID]string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return maps.Clone(tr.seen)
}

func (tr *tracker) stop() {
	tr.cancel()
	tr.factory.Shutdown()
}

// count is the number of status writes seen in [from, to).
func (tr *tracker) count(from, to time.Time) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	n := 0
	for _, ws := range tr.writes {
		for _, w := range ws {
			if !w.at.Before(from) && w.at.Before(to) {
				n++
			}
		}
	}
	return n
}

// writesOf returns the status writes of the Network uid in [from, to).
func (tr *tracker) writesOf(uid types.UID, from, to time.Time) []statusWrite {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return slices.DeleteFunc(slices.Clone(tr.writes[uid]), func(w statusWrite) bool {
		return w.at.Before(from) || !w.at.Before(to)
	})
}

// handledNetworks returns the Networks as the events handled so far show them. Unlike cached, it agrees
// with the status writes recorded: the store runs ahead of the handlers.
func (tr *tracker) handledNetworks() []*samplecrdv1.Network {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return slices.Collect(maps.Values(tr.handledLast))
}

// cached returns the Networks the watch holds now.
func (tr *tracker) cached() []*samplecrdv1.Network {
	var out []*samplecrdv1.Network
	for _, obj := range tr.informer.GetStore().List() {
		if n, ok := obj.(*samplecrdv1.Network); ok && tr.namespaces[n.Namespace] {
			out = append(out, n)
		}
	}
	return out
}

// readyText describes the Ready condition of n as "Status/Reason", "" when it has none; with
// current, "" also when it describes an older generation than n's.
func readyText(n *samplecrdv1.Network, current bool) string {
	c := meta.FindStatusCondition(n.Status.Conditions, samplecrdv1.ConditionReady)
	if c == nil || current && c.ObservedGeneration != n.Generation {
		return ""
	}
	return string(c.Status) + "/" + c.Reason
}

// programmedNow reports whether n's status says it is programmed as its current spec asks.
func programmedNow(n *samplecrdv1.Network) bool {
	return n.DeletionTimestamp == nil && readyText(n, true) == "True/"+samplecrdv1.ReasonSynced &&
		n.Status.ObservedGeneration == n.Generation && n.Status.Backend != nil
}
