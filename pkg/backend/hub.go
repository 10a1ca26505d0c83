package backend

import (
	"context"
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/types"
)

// Hub lets several controllers share one Backend, its connection and its cache. A Backend calls
// one OnReady, one OnNotReady and one OnChange function; the hub registers its own, and calls
// those of every view: each controller gets a View, whose registrations replace only its own.
type Hub struct {
	b     Backend
	mu    sync.Mutex
	views []*view
}

// NewHub registers the hub's functions on b. Call it before b starts, as Notifier.OnChange
// requires, and take the views before anything else registers on b.
func NewHub(b Backend) *Hub {
	h := &Hub{b: b}
	b.OnReady(h.ready)
	b.OnNotReady(h.notReady)
	if n, ok := b.(Notifier); ok {
		n.OnChange(h.changed)
	}
	return h
}

// View returns a Backend for one controller: every call goes to the hub's backend, except the
// registrations, which are the view's own. It implements Notifier (whose function is never
// called when the hub's backend is no Notifier) and Ports (whose calls fail when the hub's
// backend has none).
func (h *Hub) View() interface {
	Backend
	Notifier
	Ports
} {
	v := &view{Backend: h.b, hub: h}
	h.mu.Lock()
	h.views = append(h.views, v)
	h.mu.Unlock()
	return v
}

func (h *Hub) each(fn func(v *view)) {
	h.mu.Lock()
	views := append([]*view(nil), h.views...)
	h.mu.Unlock()
	for _, v := range views {
		fn(v)
	}
}

func (h *Hub) ready() {
	h.each(func(v *view) {
		if fn := v.get().ready; fn != nil {
			fn()
		}
	})
}

func (h *Hub) notReady(err error) {
	h.each(func(v *view) {
		if fn := v.get().notReady; fn != nil {
			fn(err)
		}
	})
}

func (h *Hub) changed(c Change) {
	h.each(func(v *view) {
		if fn := v.get().change; fn != nil {
			fn(c)
		}
	})
}

// view is one controller's Backend of a Hub.
type view struct {
	Backend
	hub *Hub
	mu  sync.Mutex
	fns viewFuncs
}

type viewFuncs struct {
	ready    func()
	notReady func(error)
	change   func(Change)
}

func (v *view) get() viewFuncs {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.fns
}

// OnReady registers fn for this view, and calls it at once when the backend is ready already.
func (v *view) OnReady(fn func()) {
	v.mu.Lock()
	v.fns.ready = fn
	v.mu.Unlock()
	if fn != nil && v.Backend.Ready() == nil {
		fn()
	}
}

// OnNotReady registers fn for this view.
func (v *view) OnNotReady(fn func(error)) {
	v.mu.Lock()
	v.fns.notReady = fn
	v.mu.Unlock()
}

// OnChange registers fn for this view.
func (v *view) OnChange(fn func(Change)) {
	v.mu.Lock()
	v.fns.change = fn
	v.mu.Unlock()
}

func (v *view) ports() (Ports, error) {
	if p, ok := v.Backend.(Ports); ok {
		return p, nil
	}
	return nil, fmt.Errorf("the %s backend cannot attach pods", v.Backend.Type())
}

// EnsurePort is the backend's EnsurePort.
func (v *view) EnsurePort(ctx context.Context, port Port) (PortStatus, error) {
	p, err := v.ports()
	if err != nil {
		return PortStatus{}, err
	}
	return p.EnsurePort(ctx, port)
}

// DeletePort is the backend's DeletePort.
func (v *view) DeletePort(ctx context.Context, podUID types.UID) error {
	p, err := v.ports()
	if err != nil {
		return err
	}
	return p.DeletePort(ctx, podUID)
}

// ListPorts is the backend's ListPorts.
func (v *view) ListPorts(ctx context.Context) ([]Port, error) {
	p, err := v.ports()
	if err != nil {
		return nil, err
	}
	return p.ListPorts(ctx)
}
