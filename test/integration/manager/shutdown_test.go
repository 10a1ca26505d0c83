package manager

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
	"github.com/samplecrd/samplecrd-controller/pkg/backend/ovn"
	"github.com/samplecrd/samplecrd-controller/pkg/controller/network"
	clientset "github.com/samplecrd/samplecrd-controller/pkg/generated/clientset/versioned"
	"github.com/samplecrd/samplecrd-controller/test/integration/framework"
)

// TestServerAddressInUse starts the manager with its metrics or probe address already taken: it
// exits non-zero at once, naming the address.
func TestServerAddressInUse(t *testing.T) {
	for _, flag := range []string{"--metrics-bind-address", "--health-probe-bind-address"} {
		t.Run(flag, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			addr := ln.Addr().String()
			m := startManager(t, "manager", "--controllers=podwatch", "--leader-elect=false", flag+"="+addr)
			if code := m.Wait(t, timeout); code == 0 {
				t.Fatalf("the manager exited 0 with %s=%s in use", flag, addr)
			}
			if !strings.Contains(m.Stderr(), addr) || !strings.Contains(m.Stderr(), "address already in use") {
				t.Errorf("the manager's log does not name %s as in use:\n%s", addr, m.Stderr())
			}
		})
	}
}

// TestGracefulStopDuringBurst sends SIGTERM to the leader while a burst of Networks is being
// programmed. The syncs in hand finish (none fails with a cancelled context), the queued ones are
// left: every Network is either fully programmed or untouched. The lease is released after the
// manager's last write, and the manager exits 0 within its shutdown timeout.
func TestGracefulStopDuringBurst(t *testing.T) {
	const count, clients, cluster = 400, 32, "drain"
	const shutdownTimeout = 20 * time.Second
	cfg := env.Config(t)
	ns := framework.CreateNamespace(t, env.KubeClient(t))
	db := framework.StartOVSDB(t)
	m := startManager(t, "manager", "--controllers=network", "--ovn-nb="+db.Endpoint(), "--cluster-name="+cluster,
		"--leader-elect-resource-namespace="+ns, fmt.Sprintf("--shutdown-timeout=%s", shutdownTimeout))
	kube := env.KubeClient(t)
	waitUntil(t, "the manager to lead", timeout, func() bool {
		lease, err := kube.CoordinationV1().Leases(ns).Get(context.Background(), "samplecrd-controller", metav1.GetOptions{})
		return err == nil && lease.Spec.HolderIdentity != nil && *lease.Spec.HolderIdentity != ""
	})

	client := clientset.NewForConfigOrDie(cfg)
	ctx := context.Background()
	created := make(chan error, 1)
	go func() { created <- framework.CreateNetworks(ctx, client, ns, count, clients) }()
	// Mid-burst: some Networks are Ready, most are still to come.
	waitUntil(t, "the first Networks to be Ready", timeout, func() bool {
		list, err := client.SamplecrdV1().Networks(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false
		}
		ready := 0
		for i := range list.Items {
			if meta.IsStatusConditionTrue(list.Items[i].Status.Conditions, samplecrdv1.ConditionReady) {
				ready++
			}
		}
		return ready >= 20
	})
	m.Signal(t, syscall.SIGTERM)
	stopped := time.Now()
	code := m.Wait(t, shutdownTimeout)
	t.Logf("exited %d, %v after SIGTERM", code, time.Since(stopped).Round(time.Millisecond))
	if code != 0 {
		t.Errorf("the manager exited %d after SIGTERM, want 0", code)
	}
	if err := <-created; err != nil {
		t.Fatalf("creating Networks: %v", err)
	}

	for _, e := range append(m.LogEntries("Sync failed, will retry"), m.LogEntries("Dropping key out of the queue")...) {
		t.Errorf("a sync failed during the stop: %v", e)
	}
	// client-go's elector logs a renewal that the stop cancelled mid-request ("Failed to renew
	// lease ... context canceled") before the manager releases the lease; that one is not ours.
	var cancelled []string
	for _, line := range strings.Split(grepLines(m.Stderr(), "context canceled"), "\n") {
		if line != "" && !strings.Contains(line, `"caller":"leaderelection/`) {
			cancelled = append(cancelled, line)
		}
	}
	if len(cancelled) > 0 {
		t.Errorf("the manager logged a cancelled context:\n%s", strings.Join(cancelled, "\n"))
	}
	if !strings.Contains(m.Stderr(), "Released the leader lease") {
		t.Errorf("the manager did not release the lease")
	}

	list, err := client.SamplecrdV1().Networks(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rows := db.Dump(t)
	programmed, untouched := 0, 0
	lastWrite := 0
	for i := range list.Items {
		n := &list.Items[i]
		owned := rows.OfUID(cluster, n.UID)
		nrows := len(owned.Switches) + len(owned.SwitchPorts) + len(owned.RouterPorts)
		ready := meta.FindStatusCondition(n.Status.Conditions, samplecrdv1.ConditionReady)
		switch {
		case len(n.Finalizers) == 0 && len(n.Status.Conditions) == 0 && nrows == 0:
			untouched++
			continue
		case slices.Contains(n.Finalizers, network.Finalizer) && ready != nil && ready.Status == metav1.ConditionTrue &&
			ready.ObservedGeneration == n.Generation && len(owned.Switches) == 1 && len(owned.SwitchPorts) == 1 &&
			len(owned.RouterPorts) == 1 && n.Status.Backend != nil && n.Status.Backend.ID == owned.Switches[0].UUID &&
			owned.Switches[0].OtherConfig[ovn.SubnetKey] == n.Spec.Cidr:
			programmed++
		default:
			t.Errorf("Network %s is half done: finalizers %v, status %+v, %d rows", n.Name, n.Finalizers, n.Status, nrows)
		}
		rv, err := strconv.Atoi(n.ResourceVersion)
		if err != nil {
			t.Fatalf("Network %s: resourceVersion %q is not a number", n.Name, n.ResourceVersion)
		}
		lastWrite = max(lastWrite, rv)
	}
	t.Logf("%d Networks: %d programmed, %d untouched by the stopping manager", len(list.Items), programmed, untouched)
	if programmed == 0 || untouched == 0 {
		t.Errorf("the stop did not come mid-burst (%d programmed, %d untouched): the test proves nothing", programmed, untouched)
	}

	lease, err := kube.CoordinationV1().Leases(ns).Get(ctx, "samplecrd-controller", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if lease.Spec.HolderIdentity != nil && *lease.Spec.HolderIdentity != "" {
		t.Errorf("the lease is still held by %s after the exit", *lease.Spec.HolderIdentity)
	}
	// etcd's revisions order every write: the release is the lease's last one.
	if rv, _ := strconv.Atoi(lease.ResourceVersion); rv <= lastWrite {
		t.Errorf("the lease was released at revision %d, before the manager's last Network write at %d", rv, lastWrite)
	}
}

// TestStopWithASyncStuck stops the manager while a sync waits on an ovsdb-server that answers
// nothing. The shutdown timeout bounds the stop: the sync's requests are cancelled then, and the
// manager exits. A second signal does not wait for the timeout at all.
func TestStopWithASyncStuck(t *testing.T) {
	tests := []struct {
		name            string
		shutdownTimeout time.Duration
		secondSignal    bool
		// within bounds the time from the first signal to the exit.
		within   time.Duration
		wantCode int
	}{
		{name: "shutdown timeout", shutdownTimeout: 3 * time.Second, within: 3*time.Second + 5*time.Second, wantCode: 0},
		{name: "second signal", shutdownTimeout: 5 * time.Minute, secondSignal: true, within: 5 * time.Second, wantCode: 1},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := env.Config(t)
			ns := framework.CreateNamespace(t, env.KubeClient(t))
			db := framework.StartOVSDB(t)
			// Each case has CIDRs of its own, apart from the other tests of the package (overlap is
			// judged within a namespace now, but distinct CIDRs keep the OVN rows easy to tell apart).
			subnet := func(j int) (string, string) {
				return fmt.Sprintf("10.8%d.%d.0/24", i, j), fmt.Sprintf("10.8%d.%d.1", i, j)
			}
			m := startManager(t, "manager", "--controllers=network", "--leader-elect=false", "--ovn-nb="+db.Endpoint(),
				"--cluster-name=stuck", fmt.Sprintf("--shutdown-timeout=%s", tc.shutdownTimeout))
			metricsAddr := m.ServingAddress(t, "metrics", timeout)
			client := clientset.NewForConfigOrDie(cfg)
			create := func(name string, j int) {
				t.Helper()
				cidr, gateway := subnet(j)
				if _, err := client.SamplecrdV1().Networks(ns).Create(context.Background(), &samplecrdv1.Network{
					ObjectMeta: metav1.ObjectMeta{Name: name},
					Spec:       samplecrdv1.NetworkSpec{Cidr: cidr, Gateway: gateway},
				}, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			create("first", 0)
			waitUntil(t, "the first Network to be Ready", timeout, func() bool {
				n, err := client.SamplecrdV1().Networks(ns).Get(context.Background(), "first", metav1.GetOptions{})
				return err == nil && meta.IsStatusConditionTrue(n.Status.Conditions, samplecrdv1.ConditionReady)
			})
			db.Pause(t)
			defer db.Resume(t)
			create("stuck", 1)
			waitUntil(t, "a sync in hand", timeout, func() bool {
				return metricValue(t, metricsAddr, "workqueue_longest_running_processor_seconds", map[string]string{"name": "network-controller"}) > 0
			})
			m.Signal(t, syscall.SIGTERM)
			stopped := time.Now()
			if tc.secondSignal {
				waitUntil(t, "the manager to start stopping", timeout, func() bool {
					return len(m.LogEntries("Stopping controllers: finishing the keys in hand")) > 0
				})
				m.Signal(t, syscall.SIGTERM)
			}
			code := m.Wait(t, tc.within)
			t.Logf("exited %d, %v after the first signal", code, time.Since(stopped).Round(time.Millisecond))
			if code != tc.wantCode {
				t.Errorf("exit code %d, want %d", code, tc.wantCode)
			}
			if took := time.Since(stopped); !tc.secondSignal && took < tc.shutdownTimeout {
				t.Errorf("exited %v after SIGTERM, before the %v shutdown timeout, with a sync in hand", took, tc.shutdownTimeout)
			}
		})
	}
}
