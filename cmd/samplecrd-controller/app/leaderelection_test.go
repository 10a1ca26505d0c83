package app

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
)

// TestLeaderElectionStop runs the leader-elected controllers on a fake API and stops them: a
// controller that returns gets the lease released after it; one that does not return within the
// shutdown timeout leaves the lease held (to expire), and the error says why.
func TestLeaderElectionStop(t *testing.T) {
	tests := []struct {
		name string
		// stuck makes the controller ignore the stop.
		stuck      bool
		wantErr    error
		wantHolder bool
	}{
		{name: "controllers stop: lease released", wantHolder: false},
		{name: "controllers stuck: lease kept", stuck: true, wantErr: errControllersStuck, wantHolder: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// The elector of the stuck case renews for the rest of the test binary's life, by
			// design: it logs nowhere, so that it never writes to a finished test.
			ctx, stop := context.WithCancel(klog.NewContext(context.Background(), logr.Discard()))
			o := NewOptions()
			o.ShutdownTimeout = 10 * time.Millisecond
			o.LeaderElection.Namespace = "default"
			o.LeaderElection.RetryPeriod = 10 * time.Millisecond
			client := fake.NewClientset()
			running := make(chan struct{})
			release := make(chan struct{})
			defer close(release)
			runs := map[string]runFunc{"test": func(ctx context.Context) {
				close(running)
				<-ctx.Done()
				if tc.stuck {
					<-release
				}
			}}
			done := startLeading(t, ctx, o, client, runs, running)
			stop()
			var err error
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("runWithLeaderElection did not return")
			}
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("returned %v, want %v", err, tc.wantErr)
			}
			holder := func() string {
				lease, err := client.CoordinationV1().Leases("default").Get(context.Background(), o.LeaderElection.Name, metav1.GetOptions{})
				if err != nil || lease.Spec.HolderIdentity == nil {
					return ""
				}
				return *lease.Spec.HolderIdentity
			}
			if tc.wantHolder {
				// Nothing may release it later either: the elector's context is left alone.
				if err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 200*time.Millisecond, true,
					func(context.Context) (bool, error) { return holder() == "", nil }); err == nil {
					t.Errorf("the lease was released under a controller that did not stop")
				}
			} else if h := holder(); h != "" {
				t.Errorf("the lease is still held by %q", h)
			}
		})
	}
}

// TestLostLeaseNotReleased makes the leader's renewals fail (RBAC refuses them): it stops its
// controllers and returns ErrLeaderLost, wrapping the refusal, without ever releasing the lease (client-go's elector tries to, before the
// controllers are told to stop), so that no standby takes over under controllers still writing.
func TestLostLeaseNotReleased(t *testing.T) {
	ctx := klog.NewContext(context.Background(), logr.Discard())
	o := NewOptions()
	o.LeaderElection.Namespace = "default"
	o.LeaderElection.LeaseDuration = 200 * time.Millisecond
	o.LeaderElection.RenewDeadline = 100 * time.Millisecond
	o.LeaderElection.RetryPeriod = 10 * time.Millisecond
	client := fake.NewClientset()
	var broken, released atomic.Bool
	client.PrependReactor("update", "leases", func(action k8stesting.Action) (bool, runtime.Object, error) {
		lease := action.(k8stesting.UpdateAction).GetObject().(*coordinationv1.Lease)
		if lease.Spec.HolderIdentity != nil && *lease.Spec.HolderIdentity == "" {
			released.Store(true)
			return false, nil, nil // the API server would take it
		}
		if broken.Load() {
			return true, nil, apierrors.NewForbidden(coordinationv1.Resource("leases"), lease.Name, errors.New("RBAC denies update"))
		}
		return false, nil, nil
	})
	running := make(chan struct{})
	runs := map[string]runFunc{"test": func(ctx context.Context) {
		close(running)
		<-ctx.Done()
	}}
	done := startLeading(t, ctx, o, client, runs, running)
	broken.Store(true)
	select {
	case err := <-done:
		if !errors.Is(err, ErrLeaderLost) || !apierrors.IsForbidden(err) {
			t.Errorf("returned %v, want ErrLeaderLost naming the refused update", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("runWithLeaderElection did not return after the renewals failed")
	}
	if released.Load() {
		t.Error("the lease was released after a failed renewal")
	}
}

// startLeading runs runWithLeaderElection in the background and waits until the controllers run
// (they close running); its result comes on the returned channel.
func startLeading(t *testing.T, ctx context.Context, o *Options, client *fake.Clientset, runs map[string]runFunc, running <-chan struct{}) <-chan error {
	t.Helper()
	cc := &controllerContext{opts: o, checks: &checks{}, recorder: func(string) record.EventRecorder { return record.NewFakeRecorder(10) }}
	done := make(chan error, 1)
	go func() { done <- runWithLeaderElection(ctx, ctx, o, client, cc, runs, &checks{}) }()
	select {
	case <-running:
	case <-time.After(30 * time.Second):
		t.Fatal("the controllers did not start")
	}
	return done
}

// TestLeaseUnreadable refuses every read of the Lease: the replica never leads, /readyz's
// leader-election check names the Lease and the refusal, and the stop does not claim a release.
func TestLeaseUnreadable(t *testing.T) {
	ctx, stop := context.WithCancel(klog.NewContext(context.Background(), logr.Discard()))
	defer stop()
	o := NewOptions()
	o.LeaderElection.Namespace = "default"
	o.LeaderElection.RetryPeriod = 10 * time.Millisecond
	client := fake.NewClientset()
	client.PrependReactor("get", "leases", func(action k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(coordinationv1.Resource("leases"), o.LeaderElection.Name, errors.New("RBAC denies get"))
	})
	readyz := &checks{}
	cc := &controllerContext{opts: o, checks: readyz, recorder: func(string) record.EventRecorder { return record.NewFakeRecorder(10) }}
	var ran atomic.Bool
	runs := map[string]runFunc{"test": func(context.Context) { ran.Store(true) }}
	done := make(chan error, 1)
	go func() { done <- runWithLeaderElection(ctx, ctx, o, client, cc, runs, &checks{}) }()

	want := `reading the Lease default/samplecrd-controller: leases.coordination.k8s.io "samplecrd-controller" is forbidden: RBAC denies get`
	var got string
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		got = checkResult(readyz, leaderElectionName)
		return got == want, nil
	}); err != nil {
		t.Fatalf("the leader-election readiness check says %q, want %q", got, want)
	}
	stop()
	if err := <-done; err != nil {
		t.Errorf("returned %v, want nil", err)
	}
	if ran.Load() {
		t.Error("the controllers ran without the lease")
	}
}

// checkResult runs the check name of c and returns its error's text, "ok", or "absent".
func checkResult(c *checks, name string) string {
	c.mu.RLock()
	check, ok := c.checks[name]
	c.mu.RUnlock()
	if !ok {
		return "absent"
	}
	if err := check(); err != nil {
		return err.Error()
	}
	return "ok"
}
