package network

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
)

// TrimForCache is a transform for the Network informer that keeps what this controller reads: the
// identity, generation, creation and deletion times and finalizers of a Network, its spec and its
// status. Labels, annotations, owner references and managedFields are dropped: a Network's author
// can make them as large as the API server's request limit, and the manager would hold them for
// every Network of every namespace. Install it with SetTransform only when nothing else reads
// that informer's Networks. Anything that is not a Network passes through.
func TrimForCache(obj any) (any, error) {
	n, ok := obj.(*samplecrdv1.Network)
	if !ok {
		return obj, nil
	}
	return trim(n), nil
}

// trim returns the part of n that TrimForCache keeps. It shares n's spec and status.
func trim(n *samplecrdv1.Network) *samplecrdv1.Network {
	return &samplecrdv1.Network{
		TypeMeta: n.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Name:                       n.Name,
			Namespace:                  n.Namespace,
			UID:                        n.UID,
			ResourceVersion:            n.ResourceVersion,
			Generation:                 n.Generation,
			CreationTimestamp:          n.CreationTimestamp,
			DeletionTimestamp:          n.DeletionTimestamp,
			DeletionGracePeriodSeconds: n.DeletionGracePeriodSeconds,
			Finalizers:                 n.Finalizers,
		},
		Spec:   n.Spec,
		Status: n.Status,
	}
}
