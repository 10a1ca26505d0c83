// Package nodewatch uses the shared node informer as a client-side cache: once it has synced, the
// controller prints the node list from the lister, then a line for every node added, updated or
// deleted.
package nodewatch
