// Package network is the Network controller: it reconciles Network objects (the desired state, read
// from the informer cache) against a network backend (the actual state), creating, repairing and
// deleting there until the two agree, and reports the outcome in each Network's status and events.
package network
