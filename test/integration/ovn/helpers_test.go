package ovn_test

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"

	"github.com/samplecrd/samplecrd-controller/pkg/backend"
	"github.com/samplecrd/samplecrd-controller/pkg/backend/ovn"
	"github.com/samplecrd/samplecrd-controller/test/integration/framework"
)

// timeout bounds every wait of the tests.
const timeout = 30 * time.Second

// newBackend starts an OVN backend for the cluster against db, closed by the test's cleanup.
func newBackend(t *testing.T, ctx context.Context, db *framework.OVSDB, cluster string) *ovn.Backend {
	t.Helper()
	b, err := ovn.New(ctx, ovn.Options{
		Endpoint:    db.Endpoint(),
		ClusterName: cluster,
		// Reconnect fast after the tests restart the server.
		MaxBackoff: 500 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("ovn.New: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}

// newReadyBackend is newBackend, waiting until the backend is ready.
func newReadyBackend(t *testing.T, ctx context.Context, db *framework.OVSDB, cluster string) *ovn.Backend {
	t.Helper()
	b := newBackend(t, ctx, db, cluster)
	waitReady(t, ctx, b)
	return b
}

func waitReady(t *testing.T, ctx context.Context, b *ovn.Backend) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		last = b.Ready()
		return last == nil, nil
	})
	if err != nil {
		t.Fatalf("the backend did not become ready: %v (last: %v)", err, last)
	}
}

// testContext returns a context with a logger that writes to the test's log at verbosity 2
// (libovsdb logs every operation from 4 on).
func testContext(t *testing.T) context.Context {
	logger := ktesting.NewLogger(t, ktesting.NewConfig(ktesting.Verbosity(2)))
	return klog.NewContext(context.Background(), logger)
}

func network(namespace, name string, uid types.UID, cidr, gateway string) backend.Network {
	return backend.Network{
		Namespace: namespace,
		Name:      name,
		UID:       uid,
		CIDR:      netip.MustParsePrefix(cidr),
		Gateway:   netip.MustParseAddr(gateway),
	}
}

func mustEnsure(t *testing.T, ctx context.Context, b *ovn.Backend, n backend.Network) backend.Status {
	t.Helper()
	st, err := b.Ensure(ctx, n)
	if err != nil {
		t.Fatalf("Ensure %s/%s: %v", n.Namespace, n.Name, err)
	}
	return st
}

// rows is the content of the four tables.
type rows = framework.OVNRows

// dump reads the four tables with a client of its own.
func dump(t *testing.T, db *framework.OVSDB) rows {
	t.Helper()
	return db.Dump(t)
}

// changes records the owners that OnChange reports.
type changes struct {
	// mu protects seen, the number of calls per UID.
	mu   sync.Mutex
	seen map[types.UID]int
	// all are the changes in the order reported.
	all []backend.Change
}

// reported returns the changes reported so far.
func (c *changes) reported() []backend.Change {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.all)
}

func watchChanges(b *ovn.Backend) *changes {
	c := &changes{seen: map[types.UID]int{}}
	b.OnChange(func(o backend.Change) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.seen[o.UID]++
		c.all = append(c.all, o)
	})
	return c
}

func (c *changes) count(uid types.UID) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seen[uid]
}

// waitChange waits until OnChange has reported uid more than after times.
func (c *changes) waitChange(t *testing.T, ctx context.Context, uid types.UID, after int) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, 5*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		return c.count(uid) > after, nil
	})
	if err != nil {
		t.Fatalf("OnChange was not called for %s: %v", uid, err)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return info.Size()
}

func isNotReady(err error) bool {
	return errors.Is(err, backend.ErrNotReady)
}

// waitFor polls cond until it holds.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, 5*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		return cond(), nil
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// startWatched starts an ovsdb-server and a ready backend of the cluster on it whose OnChange
// reports are recorded from the start.
func startWatched(t *testing.T) (context.Context, *framework.OVSDB, *ovn.Backend, *changes) {
	t.Helper()
	ctx := testContext(t)
	db := framework.StartOVSDB(t)
	b := newBackend(t, ctx, db, cluster)
	seen := watchChanges(b)
	waitReady(t, ctx, b)
	return ctx, db, b, seen
}
