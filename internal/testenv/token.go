package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
)

// RBACDir holds the project's RBAC manifests, among them the ClusterRoles of the metrics server's
// readers (metrics_reader_role.yaml, pprof_reader_role.yaml).
func RBACDir(root string) string {
	return filepath.Join(root, "config", "rbac")
}

// ApplyClusterRoles creates the ClusterRoles of files, each a manifest of one, or updates them to
// the manifest when they exist.
func ApplyClusterRoles(ctx context.Context, client kubernetes.Interface, files ...string) error {
	decoder := serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		obj, _, err := decoder.Decode(raw, nil, nil)
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		role, ok := obj.(*rbacv1.ClusterRole)
		if !ok {
			return fmt.Errorf("%s: a %T, not a ClusterRole", file, obj)
		}
		_, err = client.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			var existing *rbacv1.ClusterRole
			if existing, err = client.RbacV1().ClusterRoles().Get(ctx, role.Name, metav1.GetOptions{}); err == nil {
				existing.Rules = role.Rules
				_, err = client.RbacV1().ClusterRoles().Update(ctx, existing, metav1.UpdateOptions{})
			}
		}
		if err != nil {
			return fmt.Errorf("applying %s: %w", file, err)
		}
	}
	return nil
}

// ServiceAccountToken creates the ServiceAccount namespace/name (and its namespace, when
// missing), binds it to each of clusterRoles with a ClusterRoleBinding, and returns a token for
// it from the TokenRequest API, valid for expiration: what a scraper such as Prometheus presents.
func ServiceAccountToken(ctx context.Context, client kubernetes.Interface, namespace, name string, expiration time.Duration, clusterRoles ...string) (string, error) {
	ignoreExists := func(err error) error {
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		return err
	}
	_, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{})
	if err := ignoreExists(err); err != nil {
		return "", fmt.Errorf("creating namespace %s: %w", namespace, err)
	}
	_, err = client.CoreV1().ServiceAccounts(namespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err := ignoreExists(err); err != nil {
		return "", fmt.Errorf("creating service account %s/%s: %w", namespace, name, err)
	}
	for _, role := range clusterRoles {
		binding := &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: namespace + ":" + name + ":" + role},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: namespace}},
		}
		_, err := client.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{})
		if err := ignoreExists(err); err != nil {
			return "", fmt.Errorf("binding %s/%s to %s: %w", namespace, name, role, err)
		}
	}
	seconds := int64(expiration.Seconds())
	tr, err := client.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &seconds},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("requesting a token for %s/%s: %w", namespace, name, err)
	}
	return tr.Status.Token, nil
}
