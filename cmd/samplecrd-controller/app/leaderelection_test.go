package app

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/fake"
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
			cc := &controllerContext{opts: o, recorder: func(string) record.EventRecorder { return record.NewFakeRecorder(10) }}
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
			done := make(chan error, 1)
			go func() { done <- runWithLeaderElection(ctx, ctx, o, client, cc, runs, &checks{}) }()
			select {
			case <-running:
			case <-time.After(30 * time.Second):
				t.Fatal("the controllers did not start")
			}
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
