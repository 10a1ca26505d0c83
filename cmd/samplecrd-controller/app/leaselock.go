package app

import (
	"context"
	"errors"
	"fmt"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// observedLock is a leader election lock that keeps the error of the elector's last request on
// the Lease. client-go's elector only logs its failures ("error retrieving resource lock") and
// retries; this makes them a readiness check and the reason given when the lease is lost.
type observedLock struct {
	resourcelock.Interface

	mu sync.Mutex
	// readErr is the failure of the last read or create, updateErr that of the last update; nil
	// after a success. They are apart because the elector reads the Lease again after a failed
	// update, and that read's success does not make the update work.
	readErr, updateErr error
}

func (l *observedLock) wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s the Lease %s: %w", what, l.Describe(), err)
}

// lastError is the failure of the last request on the Lease, or nil.
func (l *observedLock) lastError() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.readErr != nil {
		return l.readErr
	}
	return l.updateErr
}

// Get reads the Lease. NotFound is not a failure: the elector creates the Lease next.
func (l *observedLock) Get(ctx context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	rec, raw, err := l.Interface.Get(ctx)
	if !apierrors.IsNotFound(err) {
		l.mu.Lock()
		l.readErr = l.wrap("reading", err)
		l.mu.Unlock()
	}
	return rec, raw, err
}

// Create creates the Lease. AlreadyExists is not a failure: another replica created it first.
func (l *observedLock) Create(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	err := l.Interface.Create(ctx, ler)
	if apierrors.IsAlreadyExists(err) {
		return err
	}
	l.mu.Lock()
	l.readErr = l.wrap("creating", err)
	l.mu.Unlock()
	return err
}

// Update renews, acquires or releases the Lease. A request cut short by the elector's own
// deadline is not recorded: the failure before it says why. Nor is a conflict: another replica
// wrote the Lease first, as when standbys race for a released Lease; the loser is as ready as
// before, and a leader that loses its Lease that way says so when it stops.
func (l *observedLock) Update(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	err := l.Interface.Update(ctx, ler)
	if ctx.Err() == nil && !apierrors.IsConflict(err) {
		l.mu.Lock()
		var status apierrors.APIStatus
		switch {
		case err == nil:
			l.updateErr, l.readErr = nil, nil
		case l.updateErr != nil && !errors.As(err, &status):
			// A failure of the client's own (its rate limiter giving up just before the
			// elector's deadline, say) after the server's answer: that answer says why.
		default:
			l.updateErr = l.wrap("updating", err)
		}
		l.mu.Unlock()
	}
	return err
}
