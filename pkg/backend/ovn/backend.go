package ovn

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ovn-kubernetes/libovsdb/cache"
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"

	"github.com/samplecrd/samplecrd-controller/pkg/backend"
	"github.com/samplecrd/samplecrd-controller/pkg/backend/ovn/nbdb"
)

// Defaults of Options.
const (
	// DefaultMaxBackoff is the default longest wait between two connection attempts.
	DefaultMaxBackoff = 5 * time.Second
	// DefaultConnectTimeout is the default time limit of one connection attempt, including the
	// monitor's initial dump of the tables.
	DefaultConnectTimeout = 10 * time.Second
	// DefaultProbeInterval is the default interval of the echo requests that detect a dead
	// connection that the operating system has not reported.
	DefaultProbeInterval = 5 * time.Second
)

// initialBackoff is the wait before the second connection attempt; it doubles up to MaxBackoff.
const initialBackoff = 100 * time.Millisecond

// cacheSyncTimeout bounds how long Ensure, Delete and the router creation wait, after a
// successful transaction, for the cache to show its result.
const cacheSyncTimeout = 10 * time.Second

// transactTimeout bounds one transaction. libovsdb cannot disconnect (after a failed echo probe)
// while a transaction waits for its answer.
const transactTimeout = 30 * time.Second

// ErrConflict is returned (wrapped) by Ensure and Delete when their transaction found the database
// changed since the cache was read (another writer created a row it was about to create, a row it
// kept went away, a router it was deleting gained a port); nothing was written, and the call may
// be made again.
var ErrConflict = backend.ErrConflict

// Options configure a Backend.
type Options struct {
	// Endpoint is the OVN northbound database, in OVSDB's connection syntax: "unix:/path/to/sock",
	// "tcp:host:port" or "ssl:host:port".
	Endpoint string
	// TLS are the files of an ssl: Endpoint, all three required; empty for the others.
	TLS TLSFiles
	// ClusterName names this controller's cluster in row names and in the owner external_id. Rows
	// of other cluster names are never listed, changed or deleted.
	ClusterName string
	// Logger is used for the background connection work and handed to libovsdb. When it has no
	// sink, the logger of New's context is used.
	Logger klog.Logger
	// MaxBackoff is the longest wait between two connection attempts; DefaultMaxBackoff when zero.
	MaxBackoff time.Duration
	// ConnectTimeout limits one connection attempt; DefaultConnectTimeout when zero.
	ConnectTimeout time.Duration
	// ProbeInterval is the interval of the echo requests that check the connection, and their
	// timeout; DefaultProbeInterval when zero, no probes when negative.
	ProbeInterval time.Duration
}

// Backend is the OVN implementation of backend.Backend, backend.Ports and backend.Notifier. It
// keeps a libovsdb client connected to the northbound database, reconnecting with exponential
// backoff, and reads the rows it owns from the client's cache, which a monitor keeps current.
type Backend struct {
	// opts are New's options, with the defaults filled in.
	opts Options
	// logger is for the background work.
	logger klog.Logger
	// client is the one libovsdb client, connected again after every disconnection.
	client client.Client
	// tls reads the TLS files of an ssl: endpoint, nil for the others.
	tls *tlsVerifier

	// connMu is held for writing while the client connects (which replaces libovsdb's cache and
	// API objects) and for reading while the cache is read or operations are built from it.
	connMu sync.RWMutex
	// ready is true from the end of the monitor's initial dump until the connection is lost. It
	// is set under readyMu, so that OnReady's function sees every transition to ready.
	ready   atomic.Bool
	readyMu sync.Mutex
	// onReady and onNotReady are the functions registered with OnReady and OnNotReady, nil until
	// then; guarded by readyMu.
	onReady    func()
	onNotReady func(error)
	// lastErr is why the backend is not ready, for Ready's error.
	lastErr atomic.Pointer[error]
	// misconfigured is the text of the *backend.MisconfiguredError of the last failed attempt, ""
	// when it failed otherwise or connected; guarded by readyMu.
	misconfigured string
	// handledCache is the libovsdb cache that the event handler was added to; libovsdb makes a
	// new cache on each connection.
	handledCache *cache.TableCache

	// routerMu serialises the creation of routers.
	routerMu sync.Mutex

	// onChange is the function registered with OnChange, nil until then.
	onChange atomic.Pointer[func(backend.Change)]

	// disconnected receives libovsdb's disconnection notification for the current connection.
	disconnected chan struct{}
	// cancel stops the background work, which closes done when it has stopped.
	cancel context.CancelFunc
	done   chan struct{}
	// closeOnce makes Close idempotent.
	closeOnce sync.Once
}

var (
	_ backend.Backend  = (*Backend)(nil)
	_ backend.Notifier = (*Backend)(nil)
)

// New returns a Backend that connects to the northbound database in the background: it does not
// fail when the database is unreachable, and Ready reports when the backend can be used. The
// background work stops when ctx is done or Close is called.
func New(ctx context.Context, opts Options) (*Backend, error) {
	if err := validateCluster(opts.ClusterName); err != nil {
		return nil, fmt.Errorf("invalid OVN backend options: %w", err)
	}
	if err := validateEndpoint(opts.Endpoint, opts.TLS); err != nil {
		return nil, fmt.Errorf("invalid OVN backend options: %w", err)
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = DefaultMaxBackoff
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = DefaultConnectTimeout
	}
	if opts.ProbeInterval == 0 {
		opts.ProbeInterval = DefaultProbeInterval
	}
	logger := opts.Logger
	if logger.GetSink() == nil {
		logger = klog.FromContext(ctx)
	}
	logger = logger.WithValues("endpoint", opts.Endpoint, "cluster", opts.ClusterName)

	dbModel, err := nbdb.ClientDBModel()
	if err != nil {
		return nil, fmt.Errorf("building the OVN northbound client model: %w", err)
	}
	// Client indexes let the cache answer "the rows of this UID" and "the switch or router of
	// this name" without scanning the tables: an Ensure with nothing to do then costs the same
	// with ten networks or ten thousand. (Port names have an index in the schema.) A Network's
	// pod ports have its UID too: its Ensure looks its switch ports up by UID and type (router)
	// together, so that they are not even candidates; EnsurePort and DeletePort look a pod's port
	// up by the pod's UID.
	byUID := model.ClientIndex{Columns: []model.ColumnKey{{Column: "external_ids", Key: UIDKey}}}
	byUIDAndType := model.ClientIndex{Columns: []model.ColumnKey{{Column: "external_ids", Key: UIDKey}, {Column: "type"}}}
	byPodUID := model.ClientIndex{Columns: []model.ColumnKey{{Column: "external_ids", Key: PodUIDKey}}}
	byName := model.ClientIndex{Columns: []model.ColumnKey{{Column: "name"}}}
	dbModel.SetIndexes(map[string][]model.ClientIndex{
		nbdb.LogicalSwitchTable:     {byUID, byName},
		nbdb.LogicalSwitchPortTable: {byUID, byUIDAndType, byPodUID},
		nbdb.LogicalRouterPortTable: {byUID},
		nbdb.LogicalRouterTable:     {byName},
	})
	libovsdbLogger := logger.WithName("libovsdb")
	// No client.WithReconnect: libovsdb reconnects only after a first successful connection, and
	// panics when its backoff gives up; the backend runs its own connection loop instead.
	clientOpts := []client.Option{client.WithEndpoint(opts.Endpoint), client.WithLogger(&libovsdbLogger)}
	var verifier *tlsVerifier
	if !opts.TLS.IsZero() {
		tlsConfig, v, err := newTLSConfig(opts.Endpoint, opts.TLS)
		verifier = v
		if err != nil {
			return nil, fmt.Errorf("invalid OVN backend options: %w", err)
		}
		clientOpts = append(clientOpts, client.WithTLSConfig(tlsConfig))
	}
	c, err := client.NewOVSDBClient(dbModel, clientOpts...)
	if err != nil {
		return nil, fmt.Errorf("creating the OVN northbound client: %w", err)
	}

	ctx, cancel := context.WithCancel(ctx)
	b := &Backend{
		opts:         opts,
		logger:       logger,
		client:       c,
		tls:          verifier,
		disconnected: make(chan struct{}, 1),
		cancel:       cancel,
		done:         make(chan struct{}),
	}
	notConnected := errors.New("not connected yet")
	b.lastErr.Store(&notConnected)

	listening := make(chan struct{})
	go b.forwardDisconnects(listening)
	<-listening
	go b.run(ctx)
	return b, nil
}

// Type returns "ovn".
func (b *Backend) Type() string {
	return BackendType
}

// Ready returns nil when the backend is connected and its cache holds the monitor's initial dump,
// and an error wrapping backend.ErrNotReady otherwise; it wraps a *backend.MisconfiguredError too
// when the last attempt failed for one (the server's certificate, say).
func (b *Backend) Ready() error {
	if b.ready.Load() {
		return nil
	}
	last := *b.lastErr.Load()
	if m := backend.Misconfigured(last); m != nil {
		return fmt.Errorf("%w: %w", backend.ErrNotReady, m)
	}
	return fmt.Errorf("%w: OVN northbound database %s: %v", backend.ErrNotReady, b.opts.Endpoint, last)
}

// OnReady registers fn, called when the backend becomes ready after connecting (the first time
// and after every reconnection), and at once when it is ready already. fn runs on the
// connection's goroutine, so it must return at once. A later call replaces fn.
func (b *Backend) OnReady(fn func()) {
	b.readyMu.Lock()
	defer b.readyMu.Unlock()
	b.onReady = fn
	if b.ready.Load() {
		fn()
	}
}

// OnNotReady registers fn, called with the reason when the backend stops being ready: the
// connection was lost or the server stopped answering; and, while it is not ready, when the
// reason a connection attempt failed turns into a *backend.MisconfiguredError (a TLS
// verification failure), into another one, or back into an outage. It is not called when the
// backend closes.
// fn runs on the connection's goroutine, so it must return at once. A later call replaces fn.
func (b *Backend) OnNotReady(fn func(error)) {
	b.readyMu.Lock()
	defer b.readyMu.Unlock()
	b.onNotReady = fn
}

// setReady records that the backend is ready, and calls the OnReady function when it was not.
func (b *Backend) setReady() {
	b.readyMu.Lock()
	defer b.readyMu.Unlock()
	b.misconfigured = ""
	if !b.ready.Swap(true) && b.onReady != nil {
		b.onReady()
	}
}

// setNotReady records that the backend is not ready, for why, and calls the OnNotReady function
// when it was; closing, it calls nothing.
func (b *Backend) setNotReady(why error, closing bool) {
	b.readyMu.Lock()
	defer b.readyMu.Unlock()
	if b.ready.Swap(false) && !closing && b.onNotReady != nil {
		b.onNotReady(why)
	}
}

// attemptFailed records why a connection attempt (or a connection) ended, for Ready, and calls the
// OnNotReady function when that changes whether, or how, the backend is misconfigured. A
// misconfiguration is reported by itself, in its stable words, without libovsdb's wrapping.
func (b *Backend) attemptFailed(err error) {
	b.readyMu.Lock()
	defer b.readyMu.Unlock()
	if b.tls != nil {
		if refused := b.tls.refusal(err); refused != nil && backend.Misconfigured(err) == nil {
			err = refused
		}
	}
	text := ""
	if m := backend.Misconfigured(err); m != nil {
		err = m
		text = m.Error()
	}
	b.lastErr.Store(&err)
	if text == b.misconfigured {
		return
	}
	b.misconfigured = text
	if !b.ready.Load() && b.onNotReady != nil {
		b.onNotReady(err)
	}
}

// OnChange registers fn, called with the owner of every switch, switch port or router port of the
// cluster that is created (marked Created, except during the monitor's initial dump), updated or
// deleted, including by this backend's own Ensure and Delete; with the
// owner of a port of the cluster's router whose keys or name were changed; and, marked Foreign,
// with what the name tells of a row of another owner that takes or gives up a name the cluster
// uses. A pod port's changes, and those of a switch whose ports changed by pod ports alone, come
// with Pod set (see backend.Change). fn is called from libovsdb's event loop, so it must return
// at once (for example after adding to a work queue). A later call replaces fn.
func (b *Backend) OnChange(fn func(backend.Change)) {
	b.onChange.Store(&fn)
}

// Close disconnects from the database and stops the background work. The backend is not usable
// afterwards.
func (b *Backend) Close() {
	b.closeOnce.Do(func() {
		b.cancel()
		<-b.done
	})
}

// forwardDisconnects relays libovsdb's disconnection notifications, which libovsdb drops when no
// one is receiving at that moment, to b.disconnected.
func (b *Backend) forwardDisconnects(listening chan<- struct{}) {
	notify := b.client.DisconnectNotify()
	close(listening)
	for {
		select {
		case <-b.done:
			return
		case <-notify:
			select {
			case b.disconnected <- struct{}{}:
			default:
			}
		}
	}
}

// run connects, and reconnects after every disconnection, until ctx is done.
func (b *Backend) run(ctx context.Context) {
	defer close(b.done)
	defer func() {
		closed := errors.New("closed")
		b.lastErr.Store(&closed)
	}()
	backoff := b.newBackoff()
	failures := 0
	for {
		connected, err := b.connectAndServe(ctx)
		if ctx.Err() != nil {
			b.logger.V(2).Info("Stopped the OVN northbound connection")
			return
		}
		if connected {
			backoff = b.newBackoff()
			failures = 0
		}
		b.attemptFailed(err)
		failures++
		delay := backoff.Step()
		// Log the first failures, then every tenth, so that a long outage does not flood the log.
		if failures <= 3 || failures%10 == 0 {
			b.logger.Info("OVN northbound database not connected, retrying", "err", err, "attempt", failures, "retryIn", delay)
		}
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			b.logger.V(2).Info("Stopped the OVN northbound connection")
			return
		case <-timer.C:
		}
	}
}

func (b *Backend) newBackoff() wait.Backoff {
	return wait.Backoff{Duration: initialBackoff, Factor: 2, Jitter: 0.2, Steps: 1 << 30, Cap: b.opts.MaxBackoff}
}

// connectAndServe connects, sets up the monitor, and waits for the connection to end. It returns
// whether the backend became ready, and why the connection ended.
func (b *Backend) connectAndServe(ctx context.Context) (bool, error) {
	connectCtx, cancel := context.WithTimeout(ctx, b.opts.ConnectTimeout)
	defer cancel()

	b.connMu.Lock()
	err := b.client.Connect(connectCtx)
	if err != nil {
		b.connMu.Unlock()
		return false, fmt.Errorf("connecting: %w", err)
	}
	// From here on libovsdb sends one disconnection notification for this connection.
	if c := b.client.Cache(); c != nil && c != b.handledCache {
		rows := &rowLookup{
			routerPort: func(uuid string) *nbdb.LogicalRouterPort {
				if table := c.Table(nbdb.LogicalRouterPortTable); table != nil {
					if row, ok := table.Row(uuid).(*nbdb.LogicalRouterPort); ok {
						return row
					}
				}
				return nil
			},
			switchPort: func(uuid string) *nbdb.LogicalSwitchPort {
				if table := c.Table(nbdb.LogicalSwitchPortTable); table != nil {
					if row, ok := table.Row(uuid).(*nbdb.LogicalSwitchPort); ok {
						return row
					}
				}
				return nil
			},
		}
		c.AddEventHandler(&cache.EventHandlerFuncs{
			AddFunc:    b.onAdd,
			UpdateFunc: func(table string, old, updated model.Model) { b.onUpdate(rows, table, old, updated) },
			DeleteFunc: b.onDelete,
		})
		b.handledCache = c
	}
	// Only the model's columns: libovsdb drops updates of columns its model does not have.
	_, err = b.client.Monitor(connectCtx, b.client.NewMonitor(nbdb.MonitorTables()...))
	b.connMu.Unlock()
	if err != nil {
		b.disconnect(ctx)
		return false, fmt.Errorf("monitoring the northbound tables: %w", err)
	}
	b.setReady()
	b.logger.Info("Connected to the OVN northbound database")

	var probe <-chan time.Time
	if b.opts.ProbeInterval > 0 {
		ticker := time.NewTicker(b.opts.ProbeInterval)
		defer ticker.Stop()
		probe = ticker.C
	}
	for {
		select {
		case <-b.disconnected:
			err := errors.New("disconnected")
			b.setNotReady(err, ctx.Err() != nil)
			b.logger.Info("Disconnected from the OVN northbound database")
			return true, err
		case <-ctx.Done():
			b.setNotReady(ctx.Err(), true)
			b.disconnect(context.Background())
			return true, ctx.Err()
		case <-probe:
			probeCtx, cancel := context.WithTimeout(ctx, b.opts.ProbeInterval)
			err := b.client.Echo(probeCtx)
			cancel()
			if err != nil && ctx.Err() == nil {
				b.logger.Info("OVN northbound database does not answer, reconnecting", "err", err)
				err = fmt.Errorf("echo: %w", err)
				b.setNotReady(err, false)
				b.disconnect(ctx)
				return true, err
			}
		}
	}
}

// disconnect closes the connection and waits for libovsdb to finish tearing it down (it resets
// its cache and monitors then), so that the next Connect starts clean.
func (b *Backend) disconnect(ctx context.Context) {
	b.client.Disconnect()
	select {
	case <-b.disconnected:
	case <-ctx.Done():
		// Shutting down: wait a little for libovsdb, but do not hang on it.
		select {
		case <-b.disconnected:
		case <-time.After(time.Second):
		}
	}
}

// onAdd, onUpdate and onDelete run in libovsdb's event loop for every change of a monitored row.
// Rows of the cluster are reported when they appear, change or go;
// rows of other owners when they take or give up a name the cluster uses, so that a Network
// blocked by a name conflict is synced again when it goes.
func (b *Backend) onAdd(table string, row model.Model) {
	change, owned := b.changeOf(row)
	if !owned {
		b.notifyForeignName(table, row)
		return
	}
	// Rows of the monitor's initial dump are not reported: the caller checks every Network when
	// the backend becomes ready (see OnReady).
	if b.ready.Load() {
		change.Created = true
		b.notify(change)
	}
}

// rowLookup looks rows up in the cache by UUID, for the event handler; each function returns nil
// when the row is not there.
type rowLookup struct {
	routerPort func(uuid string) *nbdb.LogicalRouterPort
	switchPort func(uuid string) *nbdb.LogicalSwitchPort
}

func (l *rowLookup) routerPortFunc() func(uuid string) *nbdb.LogicalRouterPort {
	if l == nil || l.routerPort == nil {
		return func(string) *nbdb.LogicalRouterPort { return nil }
	}
	return l.routerPort
}

func (l *rowLookup) switchPortFunc() func(uuid string) *nbdb.LogicalSwitchPort {
	if l == nil || l.switchPort == nil {
		return func(string) *nbdb.LogicalSwitchPort { return nil }
	}
	return l.switchPort
}

// onUpdate's rows look ports up in the cache: a router port taken off a router but kept by
// another router does not change itself, so the router's change is reported for it; and a switch
// whose ports changed by pod ports alone is reported as changes of those pods (see
// onSwitchPortsUpdate).
func (b *Backend) onUpdate(rows *rowLookup, table string, old, updated model.Model) {
	if o, ok := old.(*nbdb.LogicalRouter); ok {
		n, ok := updated.(*nbdb.LogicalRouter)
		if !ok {
			return
		}
		cluster := b.opts.ClusterName
		if ownedBy(o.ExternalIDs, cluster) || ownedBy(n.ExternalIDs, cluster) {
			b.onRouterUpdate(rows.routerPortFunc(), o, n)
		}
		if o.Name != n.Name {
			b.notifyForeignName(table, old)
			b.notifyForeignName(table, updated)
		}
		return
	}
	if o, ok := old.(*nbdb.LogicalSwitch); ok {
		if n, ok := updated.(*nbdb.LogicalSwitch); ok && b.onSwitchPortsUpdate(rows.switchPortFunc(), o, n) {
			return
		}
	}
	before, wasOwned := b.changeOf(old)
	if wasOwned {
		b.notify(before)
	}
	after, owned := b.changeOf(updated)
	if owned && (!wasOwned || !sameChange(after, before)) {
		b.notify(after)
	}
	if !wasOwned && (owned || rowName(old) != rowName(updated)) {
		b.notifyForeignName(table, old)
	}
	if !owned && (wasOwned || rowName(old) != rowName(updated)) {
		b.notifyForeignName(table, updated)
	}
}

// onRouterUpdate reports the changes of a router of the cluster: the owners of the ports taken
// off it, and, when its name or the keys the backend reads on it changed, the owner of one of its
// ports, whose sync puts them back.
func (b *Backend) onRouterUpdate(routerPort func(uuid string) *nbdb.LogicalRouterPort, o, n *nbdb.LogicalRouter) {
	// The router holds a port per Network: a set, not a scan per port, or every Network added
	// would cost the square of their number.
	kept := make(map[string]struct{}, len(n.Ports))
	for _, uuid := range n.Ports {
		kept[uuid] = struct{}{}
	}
	for _, uuid := range o.Ports {
		if _, ok := kept[uuid]; ok {
			continue
		}
		// A port that nothing refers to any more is gone, and its deletion is reported.
		if port := routerPort(uuid); port != nil {
			if owner, owned := b.ownerOf(port); owned {
				b.notify(backend.Change{Owned: owner})
			}
		}
	}
	changed := o.Name != n.Name
	for _, key := range managedRouterExternalIDs {
		changed = changed || o.ExternalIDs[key] != n.ExternalIDs[key]
	}
	if !changed {
		return
	}
	for _, uuid := range n.Ports {
		if port := routerPort(uuid); port != nil {
			if owner, owned := b.ownerOf(port); owned {
				b.notify(backend.Change{Owned: owner})
				return
			}
		}
	}
}

// onSwitchPortsUpdate handles the update of a switch of which only the ports changed, and all
// the ports that came or went and are still in the cache are pod ports of the cluster: each
// EnsurePort and DeletePort makes one. It reports the changes of those pods (a port moved to
// another switch by hand changes no row but the switches), and not a change of the switch's
// Network, whose sync would find nothing to do: so that attaching pods costs the network
// controller nothing. A port that went and is not in the cache any more was deleted, and its own
// deletion is reported. It returns false, and reports nothing, for any other update.
func (b *Backend) onSwitchPortsUpdate(switchPort func(uuid string) *nbdb.LogicalSwitchPort, o, n *nbdb.LogicalSwitch) bool {
	if o.Name != n.Name || !maps.Equal(o.OtherConfig, n.OtherConfig) || !maps.Equal(o.ExternalIDs, n.ExternalIDs) {
		return false
	}
	if _, owned := b.ownerOf(n); !owned {
		return false
	}
	changed := changedPorts(o.Ports, n.Ports)
	if len(changed) == 0 {
		return false
	}
	var pods []backend.Change
	for _, uuid := range changed {
		port := switchPort(uuid)
		if port == nil {
			continue
		}
		change, ok := b.changeOf(port)
		if !ok || change.Pod == nil {
			return false
		}
		pods = append(pods, change)
	}
	for _, change := range pods {
		b.notify(change)
	}
	return true
}

// changedPorts returns the ports in only one of two port lists. libovsdb appends the ports a
// mutation adds, so that the common prefix, which is skipped, is usually most of the list.
func changedPorts(before, after []string) []string {
	i := 0
	for i < len(before) && i < len(after) && before[i] == after[i] {
		i++
	}
	was, is := setOf(before[i:]), setOf(after[i:])
	var changed []string
	for _, uuid := range after[i:] {
		if _, ok := was[uuid]; !ok {
			changed = append(changed, uuid)
		}
	}
	for _, uuid := range before[i:] {
		if _, ok := is[uuid]; !ok {
			changed = append(changed, uuid)
		}
	}
	return changed
}

func (b *Backend) onDelete(table string, row model.Model) {
	if change, owned := b.changeOf(row); owned {
		b.notify(change)
		return
	}
	b.notifyForeignName(table, row)
}

// notifyForeignName reports a row of another owner whose name is one the cluster uses. For a pod
// port's name, the change names the pod by the name, and the pod and Network as far as the row's
// keys say.
func (b *Backend) notifyForeignName(table string, row model.Model) {
	if _, owned := b.changeOf(row); owned {
		return
	}
	if r, ok := row.(*nbdb.LogicalRouter); ok && ownedBy(r.ExternalIDs, b.opts.ClusterName) {
		return
	}
	if owner, ok := nameOwner(b.opts.ClusterName, table, rowName(row)); ok {
		b.notify(backend.Change{Owned: owner, Foreign: true})
		return
	}
	if r, ok := row.(*nbdb.LogicalSwitchPort); ok {
		if uid, ok := podNameOwner(b.opts.ClusterName, r.Name); ok {
			ids := r.ExternalIDs
			b.notify(backend.Change{
				Owned:   backend.Owned{Namespace: ids[NamespaceKey], Name: ids[NameKey], UID: types.UID(ids[UIDKey])},
				Foreign: true,
				Pod:     &backend.PodRef{Namespace: ids[PodNamespaceKey], Name: ids[PodNameKey], UID: uid},
			})
		}
	}
}

func (b *Backend) notify(change backend.Change) {
	if fn := b.onChange.Load(); fn != nil {
		(*fn)(change)
	}
}

// rowName returns the name of a switch, switch port, router or router port.
func rowName(row model.Model) string {
	switch r := row.(type) {
	case *nbdb.LogicalSwitch:
		return r.Name
	case *nbdb.LogicalSwitchPort:
		return r.Name
	case *nbdb.LogicalRouter:
		return r.Name
	case *nbdb.LogicalRouterPort:
		return r.Name
	}
	return ""
}

// changeOf returns the change to report for a switch, switch port or router port of the cluster:
// for a pod port (see podOf), with Pod set and the Network its keys say; false for a row that is
// not the cluster's.
func (b *Backend) changeOf(row model.Model) (backend.Change, bool) {
	if pod := b.podOf(row); pod != nil {
		ids := row.(*nbdb.LogicalSwitchPort).ExternalIDs
		return backend.Change{Owned: backend.Owned{Namespace: ids[NamespaceKey], Name: ids[NameKey], UID: types.UID(ids[UIDKey])}, Pod: pod}, true
	}
	owner, owned := b.ownerOf(row)
	return backend.Change{Owned: owner}, owned
}

// sameChange reports whether two changes say the same, Pod by value.
func sameChange(a, b backend.Change) bool {
	if (a.Pod == nil) != (b.Pod == nil) || (a.Pod != nil && *a.Pod != *b.Pod) {
		return false
	}
	return a.Owned == b.Owned && a.Foreign == b.Foreign && a.Created == b.Created
}

// podOf returns the pod of a pod port of the cluster (see PodUIDKey), nil for any other row.
func (b *Backend) podOf(row model.Model) *backend.PodRef {
	r, ok := row.(*nbdb.LogicalSwitchPort)
	if !ok || !isPodPort(r.ExternalIDs, b.opts.ClusterName) {
		return nil
	}
	ids := r.ExternalIDs
	return &backend.PodRef{Namespace: ids[PodNamespaceKey], Name: ids[PodNameKey], UID: types.UID(ids[PodUIDKey])}
}

// ownerOf returns the Network of a switch, switch port or router port of the cluster; not of a
// pod port, which is the pod's (see podOf).
func (b *Backend) ownerOf(row model.Model) (backend.Owned, bool) {
	var ids map[string]string
	switch r := row.(type) {
	case *nbdb.LogicalSwitch:
		ids = r.ExternalIDs
	case *nbdb.LogicalSwitchPort:
		if isPodPort(r.ExternalIDs, b.opts.ClusterName) {
			return backend.Owned{}, false
		}
		ids = r.ExternalIDs
	case *nbdb.LogicalRouterPort:
		ids = r.ExternalIDs
	default:
		return backend.Owned{}, false
	}
	uid := ownedUID(ids, b.opts.ClusterName)
	if uid == "" {
		return backend.Owned{}, false
	}
	return backend.Owned{Namespace: ids[NamespaceKey], Name: ids[NameKey], UID: uid}, true
}
