// Package podcount implements the podcount controller of the first tutorial: it counts the pods in
// the cluster and labels every control-plane node with the count.
//
// Unlike the tutorial, it counts from a metadata-only informer (a count needs no pod bodies),
// recounts soon after pods come and go as well as on the tutorial's periodic pass, patches a node
// only when its label differs, and records events only as often as its EventMode says.
package podcount
