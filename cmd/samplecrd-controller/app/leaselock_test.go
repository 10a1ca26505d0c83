package app

import (
	"context"
	"errors"
	"testing"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// scriptedLock answers each request with the next error of its kind.
type scriptedLock struct {
	resourcelock.Interface
	get, create, update []error
}

func next(errs *[]error) error {
	err := (*errs)[0]
	*errs = (*errs)[1:]
	return err
}

func (l *scriptedLock) Get(context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	return &resourcelock.LeaderElectionRecord{}, nil, next(&l.get)
}
func (l *scriptedLock) Create(context.Context, resourcelock.LeaderElectionRecord) error {
	return next(&l.create)
}
func (l *scriptedLock) Update(context.Context, resourcelock.LeaderElectionRecord) error {
	return next(&l.update)
}
func (l *scriptedLock) Describe() string { return "ns/lease" }

// TestObservedLock checks which failures on the Lease make the manager unready: refusals do,
// until the request works again; losing a race to another replica does not.
func TestObservedLock(t *testing.T) {
	lease := schema.GroupResource{Group: coordinationv1.GroupName, Resource: "leases"}
	forbidden := apierrors.NewForbidden(lease, "lease", errors.New("RBAC"))
	conflict := apierrors.NewConflict(lease, "lease", errors.New("changed"))
	exists := apierrors.NewAlreadyExists(lease, "lease")
	notFound := apierrors.NewNotFound(lease, "lease")
	ctx := context.Background()
	tests := []struct {
		name  string
		steps func(l *observedLock)
		want  string
	}{
		{name: "a standby that lost the race for a released Lease", want: "", steps: func(l *observedLock) {
			_, _, _ = l.Get(ctx)
			_ = l.Update(ctx, resourcelock.LeaderElectionRecord{})
			_, _, _ = l.Get(ctx)
		}},
		{name: "another replica created the Lease first", want: "", steps: func(l *observedLock) {
			_, _, _ = l.Get(ctx)
			_ = l.Create(ctx, resourcelock.LeaderElectionRecord{})
		}},
		{name: "an update refused", want: "updating the Lease ns/lease: leases.coordination.k8s.io \"lease\" is forbidden: RBAC", steps: func(l *observedLock) {
			_, _, _ = l.Get(ctx)
			l.Interface.(*scriptedLock).update = []error{forbidden}
			_ = l.Update(ctx, resourcelock.LeaderElectionRecord{})
			_, _, _ = l.Get(ctx)
		}},
		{name: "an update refused, then the client's rate limiter gave up", want: "updating the Lease ns/lease: leases.coordination.k8s.io \"lease\" is forbidden: RBAC", steps: func(l *observedLock) {
			l.Interface.(*scriptedLock).update = []error{forbidden, errors.New("client rate limiter Wait returned an error: rate: Wait(n=1) would exceed context deadline")}
			_ = l.Update(ctx, resourcelock.LeaderElectionRecord{})
			_ = l.Update(ctx, resourcelock.LeaderElectionRecord{})
		}},
		{name: "a read refused", want: "reading the Lease ns/lease: leases.coordination.k8s.io \"lease\" is forbidden: RBAC", steps: func(l *observedLock) {
			l.Interface.(*scriptedLock).get = []error{forbidden}
			_, _, _ = l.Get(ctx)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := &observedLock{Interface: &scriptedLock{
				get:    []error{notFound, nil, nil},
				create: []error{exists},
				update: []error{conflict},
			}}
			tc.steps(l)
			got := ""
			if err := l.lastError(); err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("lastError() = %q, want %q", got, tc.want)
			}
		})
	}
}
