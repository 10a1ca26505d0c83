// Package nodewatch implements the node informer of the third tutorial, used as a client-side
// cache: once the shared node informer has synced it prints the node list from the lister, then a
// line for every node added, updated or deleted.
package nodewatch
