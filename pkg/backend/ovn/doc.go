// Package ovn is the backend that programs Networks into the OVN northbound database, through
// libovsdb (github.com/ovn-kubernetes/libovsdb).
//
// For a cluster named C, each Network namespace/name with UID U is:
//
//   - a Logical_Switch named C.namespace.name, with OVN's native IPAM settings in other_config
//     (subnet and exclude_ips=<gateway> for IPv4, ipv6_prefix for IPv6) and the CIDR and gateway
//     in external_ids;
//   - a Logical_Router_Port C.lrp.U on the cluster router C.router, with the gateway address and
//     a MAC address derived from U;
//   - a Logical_Switch_Port C.lsp.U of type router on the switch, connected to that router port.
//
// Every row carries external_ids samplecrd.k8s.io/owner=C, and the Network's namespace, name and
// UID (the router: owner and samplecrd.k8s.io/role=cluster-router). Rows are found by these
// external_ids, never by name, and rows of other owners are ignored entirely.
//
// The backend keeps one connection with a monitor of the four tables, and reads rows from
// libovsdb's cache. New does not wait for the database: the backend connects and reconnects in the
// background with exponential backoff, and Ready, Ensure, Delete and List return an error wrapping
// backend.ErrNotReady until the monitor's initial dump is in the cache, so that nothing is decided
// on an empty cache.
//
// The cluster router is created right after connecting, or by the first Ensure that finds it
// missing, in a transaction of its own and one creation at a time.
//
// Ensure computes the difference between the desired rows and the cached ones and writes it in one
// transaction: missing rows are created, changed columns and managed keys are put back, duplicates
// are deleted. Keys of other_config, options and external_ids that the backend does not manage are
// left alone, as are other ports on the switch. Inserts are guarded by wait operations, so that a
// stale cache or a concurrent writer (such as another replica) makes the transaction fail with
// ErrConflict rather than create a second row of the same name for the UID. After a transaction,
// Ensure and Delete wait for the cache to show its result, so that the next call sees it.
package ovn
