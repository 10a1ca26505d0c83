// Package podnetwork attaches pods to Networks: for each pod that asks for a Network of its
// namespace (its own annotation, or its namespace's default), it allocates an IP and a MAC address
// from the Network's cidr, creates the pod's port on the Network's switch in the backend, and
// writes the result into the pod's annotations, where a CNI plugin on the node reads it. It
// releases both when the pod goes or stops asking. Its Registry, shared with the network
// controller, holds every allocation: the network controller reads it for the Network's status,
// and waits for a Network's pods to go before it removes the Network.
package podnetwork
