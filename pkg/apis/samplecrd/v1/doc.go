// Package v1 is version v1 of the samplecrd.k8s.io API group: the Network resource of the
// tutorial "k8s-controller-custom-resource", with a validated spec and a status.
//
// +k8s:deepcopy-gen=package
// +groupName=samplecrd.k8s.io
package v1
