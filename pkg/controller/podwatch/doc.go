// Package podwatch prints the pods of one namespace as they change: an indexer informer of its
// own and a rate-limited queue whose worker prints each pod that was added, updated or deleted,
// retrying a failing key a bounded number of times and then dropping it.
package podwatch
