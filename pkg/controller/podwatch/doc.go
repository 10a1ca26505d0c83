// Package podwatch implements the pod controller of the second tutorial: an indexer informer on the
// pods of one namespace and a rate-limited queue whose worker prints each pod that was added,
// updated or deleted, retrying a failing key a bounded number of times.
package podwatch
