// Package ovn is the backend that programs Networks into the OVN northbound database, through
// libovsdb (github.com/ovn-kubernetes/libovsdb).
//
// For a cluster named C, the Networks of a namespace N share a Logical_Router named C.N, with
// external_ids samplecrd.k8s.io/owner=C, samplecrd.k8s.io/role=namespace-router and
// samplecrd.k8s.io/namespace=N: each namespace is a routing domain of its own. The router is
// created in the transaction of the namespace's first Network and deleted in that of its last.
// Each Network N/name with UID U is:
//
//   - a Logical_Switch named C.N.name, with OVN's native IPAM settings in other_config (subnet and
//     exclude_ips=<gateway> for IPv4, ipv6_prefix for IPv6 /64 prefixes) and the CIDR and gateway
//     in external_ids;
//   - a Logical_Router_Port C.lrp.U on the namespace's router, with the gateway address and a MAC
//     address derived from U;
//   - a Logical_Switch_Port C.lsp.U of type router on the switch, connected to that router port.
//
// A pod P/p with UID V attached to a Network (EnsurePort) is a Logical_Switch_Port C.pod.V on the
// Network's switch, with addresses and port_security "MAC IP" (the caller allocates both), and
// external_ids samplecrd.k8s.io/pod-namespace, pod-name and pod-uid besides the Network's keys.
// The Network's Ensure and List leave pod ports alone (Ensure moves those on a duplicate switch
// it deletes to the switch kept); its Delete removes the Network's pod ports, wherever they are,
// with the switch (which would take the ports on it along anyway: Logical_Switch_Port is not a
// root table).
//
// Every switch and port carries external_ids samplecrd.k8s.io/owner=C, and the Network's
// namespace, name and UID. Rows are found by these external_ids (routers by name, then keys).
// Rows of other owners are never changed, except that the cluster's own ports are taken off them,
// and a row of another owner under a name a Network needs gives a *backend.NameConflictError.
//
// The backend keeps one connection with a monitor of the four tables, and reads rows from
// libovsdb's cache. New does not wait for the database: the backend connects and reconnects in the
// background with exponential backoff, and Ready, Ensure, Delete, List and the port methods return an error wrapping
// backend.ErrNotReady until the monitor's initial dump is in the cache, so that nothing is decided
// on an empty cache.
//
// Ensure computes the difference between the desired rows and the cached ones and writes it in one
// transaction: missing rows are created, changed columns and managed keys are put back, duplicates
// are deleted. Keys of other_config, options and external_ids that the backend does not manage are
// left alone, as are other ports on the switch. Inserts are guarded by wait operations, so that a
// stale cache or a concurrent writer (such as another replica) makes the transaction fail with
// ErrConflict rather than create a second row of the same name for the UID. After a transaction,
// Ensure and Delete wait for the cache to show its result, so that the next call sees it.
package ovn
