package testenv

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"

	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
	clientset "github.com/samplecrd/samplecrd-controller/pkg/generated/clientset/versioned"
)

// readPolicies decodes the objects of the kustomization in dir (PolicyDir): the files its
// resources list, in that order, each of one or more YAML documents. Decoding is strict: an unknown
// or duplicate field is an error, as it would be for kubectl.
func readPolicies(dir string) ([]runtime.Object, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		return nil, err
	}
	var kustomization struct {
		Resources []string `json:"resources"`
	}
	if err := yaml.Unmarshal(raw, &kustomization); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "kustomization.yaml"), err)
	}
	decoder := serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()
	var objs []runtime.Object
	for _, name := range kustomization.Resources {
		path := filepath.Join(dir, name)
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		reader := yaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
		for {
			doc, err := reader.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			if len(bytes.TrimSpace(doc)) == 0 {
				continue
			}
			obj, _, err := decoder.Decode(doc, nil, nil)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			objs = append(objs, obj)
		}
	}
	return objs, nil
}

// installPolicies creates the admission policies of dir (readPolicies) and waits until the API
// server enforces them, for at most timeout.
func installPolicies(cfg *rest.Config, dir string, timeout time.Duration) error {
	objs, err := readPolicies(dir)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	admission := kube.AdmissionregistrationV1()
	create := metav1.CreateOptions{FieldValidation: metav1.FieldValidationStrict}
	for _, obj := range objs {
		switch o := obj.(type) {
		case *admissionregistrationv1.ValidatingAdmissionPolicy:
			_, err = admission.ValidatingAdmissionPolicies().Create(ctx, o, create)
		case *admissionregistrationv1.ValidatingAdmissionPolicyBinding:
			_, err = admission.ValidatingAdmissionPolicyBindings().Create(ctx, o, create)
		default:
			err = fmt.Errorf("%T is not an admission policy or binding", obj)
		}
		if err != nil {
			return fmt.Errorf("creating the admission policies of %s: %w", dir, err)
		}
	}
	client, err := clientset.NewForConfig(cfg)
	if err != nil {
		return err
	}
	return waitForAllowedCIDRsPolicy(ctx, kube, client)
}

// removeNamespaceTimeout bounds the removal of the namespace of waitForAllowedCIDRsPolicy.
const removeNamespaceTimeout = 30 * time.Second

// The probe of waitForAllowedCIDRsPolicy: a namespace allowing one documentation range
// (RFC 5737) and a Network in another.
const (
	probeAllowedCIDRs = "192.0.2.0/24"
	probeCIDR         = "198.51.100.0/24"
	probeGateway      = "198.51.100.1"
)

// waitForAllowedCIDRsPolicy waits until the API server enforces the allowed-cidrs policy. A
// ValidatingAdmissionPolicy takes effect a moment after its creation, once the API server's
// informers have seen the policy and its binding and it has compiled them, and nothing in the API
// says when. So it retries the dry-run creation of a Network that the policy refuses, in a
// namespace created for the purpose, until the policy refuses it, and then removes the namespace.
func waitForAllowedCIDRsPolicy(ctx context.Context, kube kubernetes.Interface, client clientset.Interface) (err error) {
	ns, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		GenerateName: "samplecrd-policy-check-",
		Annotations:  map[string]string{samplecrdv1.AllowedCIDRsAnnotation: probeAllowedCIDRs},
	}}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("creating a namespace to check the admission policy: %w", err)
	}
	defer func() {
		// Also when ctx has expired.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), removeNamespaceTimeout)
		defer cancel()
		err = errors.Join(err, removeNamespace(ctx, kube, ns.Name))
	}()

	network := &samplecrdv1.Network{
		ObjectMeta: metav1.ObjectMeta{Name: "policy-check"},
		Spec:       samplecrdv1.NetworkSpec{Cidr: probeCIDR, Gateway: probeGateway},
	}
	dryRun := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	var last error
	pollErr := wait.PollUntilContextCancel(ctx, 20*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		_, err := client.SamplecrdV1().Networks(ns.Name).Create(ctx, network, dryRun)
		switch {
		case err == nil:
			last = fmt.Errorf("a Network on %s was admitted in a namespace that allows %s", probeCIDR, probeAllowedCIDRs)
		case apierrors.IsForbidden(err) && strings.Contains(err.Error(), samplecrdv1.AllowedCIDRsAnnotation):
			return true, nil
		default:
			// Also while the API server's admission is not yet ready; a persistent error is reported
			// at the timeout.
			last = err
		}
		return false, nil
	})
	if pollErr != nil {
		return fmt.Errorf("waiting for the allowed-cidrs admission policy to take effect: %w; last: %v", pollErr, last)
	}
	return nil
}

// removeNamespace deletes a namespace and finalizes it, which the namespace controller of
// kube-controller-manager would do: none runs here. The namespace must be empty.
func removeNamespace(ctx context.Context, kube kubernetes.Interface, name string) error {
	namespaces := kube.CoreV1().Namespaces()
	if err := namespaces.Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		return fmt.Errorf("deleting the namespace %s: %w", name, err)
	}
	ns, err := namespaces.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("finalizing the namespace %s: %w", name, err)
	}
	ns.Spec.Finalizers = nil
	if _, err := namespaces.Finalize(ctx, ns, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("finalizing the namespace %s: %w", name, err)
	}
	return nil
}
