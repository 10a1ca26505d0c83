package manifests

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"

	"github.com/samplecrd/samplecrd-controller/internal/manifests"
	"github.com/samplecrd/samplecrd-controller/test/integration/framework"
)

// fieldManager is the field manager of the test's server-side applies.
const fieldManager = "manifests-test"

// render renders dirs exactly as make manifests does, and decodes the objects.
func render(t *testing.T, image string, dirs ...string) []*unstructured.Unstructured {
	t.Helper()
	out, err := manifests.Render(framework.RepoRoot(), image, dirs...)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decode(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) == 0 {
		t.Fatalf("rendering %v gave no object", dirs)
	}
	return objs
}

// decode reads a YAML stream of objects.
func decode(stream []byte) ([]*unstructured.Unstructured, error) {
	reader := yaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(stream)))
	var objs []*unstructured.Unstructured
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		obj := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(doc, &obj.Object); err != nil {
			return nil, fmt.Errorf("decoding %q: %w", doc, err)
		}
		objs = append(objs, obj)
	}
}

// find returns the one object of kind and name.
func find(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	var found []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		t.Fatalf("the manifests hold %d %s objects named %q, want 1", len(found), kind, name)
	}
	return found[0]
}

// toTyped converts obj into out (a typed object), refusing fields the type does not have.
func toTyped(t *testing.T, obj *unstructured.Unstructured, out any) {
	t.Helper()
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(obj.Object, out, true); err != nil {
		t.Fatalf("%s %s: %v", obj.GetKind(), obj.GetName(), err)
	}
}

// warnings collects the API server's warnings, which a test fails on: a deprecated API or field,
// or a field the server dropped, is a manifest to fix.
type warnings struct {
	mu   sync.Mutex
	list []string
}

func (w *warnings) HandleWarningHeaderWithContext(_ context.Context, _ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, text)
}

func (w *warnings) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	l := w.list
	w.list = nil
	return l
}

// applier applies unstructured objects with server-side apply, the way kubectl apply
// --server-side does, finding each object's resource through discovery.
type applier struct {
	dyn      dynamic.Interface
	mapper   *restmapper.DeferredDiscoveryRESTMapper
	warnings *warnings
}

func newApplier(t *testing.T) *applier {
	t.Helper()
	cfg := env.Config(t)
	w := &warnings{}
	cfg.WarningHandlerWithContext = w
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &applier{dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc)), warnings: w}
}

// resource is the client of obj's resource, in its namespace when it is namespaced.
func (a *applier) resource(obj *unstructured.Unstructured) (dynamic.ResourceInterface, error) {
	gvk := obj.GroupVersionKind()
	mapping, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, fmt.Errorf("%s %s: the API server does not serve it: %w", gvk, obj.GetName(), err)
	}
	if mapping.Scope.Name() == "namespace" {
		if obj.GetNamespace() == "" {
			return nil, fmt.Errorf("%s %s is namespaced and has no namespace", gvk.Kind, obj.GetName())
		}
		return a.dyn.Resource(mapping.Resource).Namespace(obj.GetNamespace()), nil
	}
	return a.dyn.Resource(mapping.Resource), nil
}

// apply applies obj; with dryRun the API server runs every admission step, validation included,
// and persists nothing.
func (a *applier) apply(ctx context.Context, obj *unstructured.Unstructured, dryRun bool) (*unstructured.Unstructured, error) {
	res, err := a.resource(obj)
	if err != nil {
		return nil, err
	}
	opts := metav1.ApplyOptions{FieldManager: fieldManager, Force: true}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	out, err := res.Apply(ctx, obj.GetName(), obj, opts)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", obj.GetKind(), obj.GetName(), err)
	}
	return out, nil
}

// name is an object's kind and name, for messages.
func name(obj *unstructured.Unstructured) string {
	if obj.GetNamespace() != "" {
		return fmt.Sprintf("%s %s/%s", obj.GetKind(), obj.GetNamespace(), obj.GetName())
	}
	return obj.GetKind() + " " + obj.GetName()
}

// applyNamespaces creates the Namespaces of objs for real: the namespaced objects' dry-runs need
// them to exist, and a Pod's dry-run create is checked against the Pod Security labels of the real
// Namespace.
func applyNamespaces(t *testing.T, a *applier, objs []*unstructured.Unstructured) {
	t.Helper()
	for _, obj := range objs {
		if obj.GetKind() != "Namespace" {
			continue
		}
		if _, err := a.apply(context.Background(), obj, false); err != nil {
			t.Fatal(err)
		}
	}
}

// dryRunAll applies every object with dryRun=All and fails the test for each one the API server
// refuses or warns about.
func dryRunAll(t *testing.T, a *applier, objs []*unstructured.Unstructured) {
	t.Helper()
	for _, obj := range objs {
		out, err := a.apply(context.Background(), obj, true)
		if err != nil {
			t.Errorf("the API server refuses %v", err)
			continue
		}
		if out.GetKind() != obj.GetKind() || out.GetName() != obj.GetName() {
			t.Errorf("dry-run of %s returned %s", name(obj), name(out))
		}
		if w := a.warnings.take(); len(w) > 0 {
			t.Errorf("the API server warns about %s: %s", name(obj), strings.Join(w, "; "))
		}
	}
}
