// Package podcount counts the pods in the cluster and labels every control-plane node with the
// count.
//
// It counts from a metadata-only informer (a count needs no pod bodies), recounts soon after pods
// come and go as well as on a periodic pass, patches a node only when its label differs, and
// records events only as often as its EventMode says (EventsAll keeps an event on every pod at
// every pass, for compatibility, at the cost of most of its API traffic).
package podcount
