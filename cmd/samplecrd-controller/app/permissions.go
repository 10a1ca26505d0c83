package app

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	authorizationclient "k8s.io/client-go/kubernetes/typed/authorization/v1"
	"k8s.io/klog/v2"

	"github.com/samplecrd/samplecrd-controller/pkg/metrics"
)

// permission is one kind of request a part of the manager makes to the API server.
type permission struct {
	// verb, group, resource and subresource are the request's, as RBAC rules name them.
	verb, group, resource, subresource string
	// namespace is where the requests go; empty for every namespace or a cluster-scoped resource.
	namespace string
	// name narrows the permission to one object (the Lease); empty for any.
	name string
}

// resourceString is the resource as kubectl names it: resource.group/subresource.
func (p permission) resourceString() string {
	s := p.resource
	if p.group != "" {
		s += "." + p.group
	}
	if p.subresource != "" {
		s += "/" + p.subresource
	}
	return s
}

// where says in which namespace the permission is needed.
func (p permission) where() string {
	if p.namespace == "" {
		return "cluster-wide"
	}
	return "in namespace " + p.namespace
}

func (p permission) String() string {
	s := p.verb + " " + p.resourceString()
	if p.name != "" {
		s += " " + p.name
	}
	return s + " " + p.where()
}

// eventPermissions are what client-go's core/v1 event recorder sends: a create for a new event, a
// patch for a repeat (the count and last timestamp). It never updates, and never uses the
// events.k8s.io API.
func eventPermissions(namespace string) []permission {
	return []permission{
		{verb: "create", resource: "events", namespace: namespace},
		{verb: "patch", resource: "events", namespace: namespace},
	}
}

// listWatch is what an informer sends: a list, then a watch.
func listWatch(group, resource, namespace string) []permission {
	return []permission{
		{verb: "list", group: group, resource: resource, namespace: namespace},
		{verb: "watch", group: group, resource: resource, namespace: namespace},
	}
}

// leaderElectionName is the name under which the leader election's permissions are reported.
const leaderElectionName = "leader-election"

// metricsServerName is the name under which the secure metrics server's permissions are reported.
const metricsServerName = "metrics-server"

// managerPermissions are what the manager itself needs besides its controllers, by the name they
// are reported under. A server or feature of the manager that sends requests to the API server
// adds its own entry here, when it is enabled (an authenticated metrics server's create on
// tokenreviews and subjectaccessreviews, say).
func managerPermissions(o *Options) map[string][]permission {
	out := map[string][]permission{}
	if le := o.LeaderElection; le.Enabled {
		lease := func(verb, name string) permission {
			return permission{verb: verb, group: coordinationv1.GroupName, resource: "leases", namespace: le.Namespace, name: name}
		}
		out[leaderElectionName] = append([]permission{
			// client-go's elector reads the Lease, creates it when it is missing (create cannot be
			// narrowed to a name), and renews it by updates.
			lease("get", le.Name), lease("create", ""), lease("update", le.Name),
			// The leadership events, and the manager's own (backend outages), are on the Lease.
		}, eventPermissions(le.Namespace)...)
	}
	if o.MetricsBindAddress != "" && o.MetricsBindAddress != "0" && o.Metrics.Secure {
		// Every scrape's bearer token is checked with a TokenReview, and its access to the path
		// with a SubjectAccessReview (controller-runtime's metrics filter).
		out[metricsServerName] = []permission{
			{verb: "create", group: authenticationv1.GroupName, resource: "tokenreviews"},
			{verb: "create", group: authorizationv1.GroupName, resource: "subjectaccessreviews"},
		}
	}
	return out
}

// neededPermission is a permission and who needs it.
type neededPermission struct {
	// owner is the controller's name, or leaderElectionName.
	owner string
	permission
}

// neededPermissions lists what the enabled controllers and the manager need, in a stable order.
func neededPermissions(o *Options) []neededPermission {
	var out []neededPermission
	for _, d := range controllerDescriptors() {
		if !o.enabled(d.name) || d.permissions == nil {
			continue
		}
		for _, p := range d.permissions(o) {
			out = append(out, neededPermission{owner: d.controllerName, permission: p})
		}
	}
	manager := managerPermissions(o)
	owners := make([]string, 0, len(manager))
	for owner := range manager {
		owners = append(owners, owner)
	}
	slices.Sort(owners)
	for _, owner := range owners {
		for _, p := range manager[owner] {
			out = append(out, neededPermission{owner: owner, permission: p})
		}
	}
	return out
}

// How often the permissions are asked again: often while one is missing, so that a fixed RBAC
// makes the manager ready within seconds without a restart; rarely once all are granted, where
// the API server's own refusals (in the log and samplecrd_events_failed_total) tell first. A
// check is one SelfSubjectAccessReview per distinct permission (about twenty), which the API
// server answers from its authorizer's cache without storing anything.
const (
	permissionRecheckMissing = 10 * time.Second
	permissionRecheckGranted = 5 * time.Minute
)

// permissionChecker asks the API server, by SelfSubjectAccessReviews, whether the manager may do
// what its controllers need, and reports every denied permission in the log (when it becomes
// denied), on /readyz and in samplecrd_missing_permissions.
type permissionChecker struct {
	reviews authorizationclient.SelfSubjectAccessReviewInterface
	needed  []neededPermission

	mu sync.Mutex
	// missing are the denied permissions of the last check, in the order of needed.
	missing []neededPermission
}

func newPermissionChecker(reviews authorizationclient.SelfSubjectAccessReviewInterface, needed []neededPermission) *permissionChecker {
	return &permissionChecker{reviews: reviews, needed: needed}
}

// run checks at once, then again after permissionRecheckMissing or permissionRecheckGranted,
// until ctx is cancelled.
func (c *permissionChecker) run(ctx context.Context) {
	for {
		interval := permissionRecheckGranted
		if err := c.check(ctx); err != nil || !c.allGranted() {
			interval = permissionRecheckMissing
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}

func (c *permissionChecker) allGranted() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.missing) == 0
}

// check asks about every needed permission once and records the answers. A permission it could
// not ask about keeps its last answer; the error says why.
func (c *permissionChecker) check(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	allowed := map[permission]bool{}
	var errs []string
	for _, n := range c.needed {
		if _, done := allowed[n.permission]; done {
			continue
		}
		ok, err := c.allowed(ctx, n.permission)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		allowed[n.permission] = ok
	}

	c.mu.Lock()
	previous := c.missing
	c.mu.Unlock()
	var missing []neededPermission
	for _, n := range c.needed {
		ok, known := allowed[n.permission]
		if !known {
			ok = !slices.Contains(previous, n)
		}
		if !ok {
			missing = append(missing, n)
		}
	}
	gauges := map[[3]string]float64{}
	for _, n := range c.needed {
		key := [3]string{n.owner, n.verb, n.resourceString()}
		if slices.Contains(missing, n) {
			gauges[key] = 1
			if !slices.Contains(previous, n) {
				logger.Error(nil, "Missing permission: RBAC denies a request the manager needs",
					"controller", n.owner, "verb", n.verb, "resource", n.resourceString(), "name", n.name, "namespace", n.where())
			}
		} else if _, set := gauges[key]; !set {
			gauges[key] = 0
			if slices.Contains(previous, n) {
				logger.Info("Permission granted", "controller", n.owner, "verb", n.verb, "resource", n.resourceString(), "name", n.name, "namespace", n.where())
			}
		}
	}
	for key, v := range gauges {
		metrics.MissingPermissions.WithLabelValues(key[:]...).Set(v)
	}
	// Readiness follows the log and the gauges, so that whoever sees it fail finds them too.
	c.mu.Lock()
	c.missing = missing
	c.mu.Unlock()
	if len(errs) > 0 && ctx.Err() == nil {
		err := fmt.Errorf("checking permissions: %s", strings.Join(errs, "; "))
		logger.Error(err, "Could not check the manager's permissions", "retryIn", permissionRecheckMissing)
		return err
	}
	return nil
}

// allowed asks the API server whether this client may make the request p describes.
func (c *permissionChecker) allowed(ctx context.Context, p permission) (bool, error) {
	review, err := c.reviews.Create(ctx, &authorizationv1.SelfSubjectAccessReview{
		Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: p.namespace, Verb: p.verb, Group: p.group, Resource: p.resource,
			Subresource: p.subresource, Name: p.name,
		}},
	}, metav1.CreateOptions{})
	if err != nil {
		return false, fmt.Errorf("asking whether it may %s: %w", p, err)
	}
	return review.Status.Allowed, nil
}

// ready fails, naming each one, while a needed permission is denied. Until the first answer, or
// when the API server cannot be asked, it passes: the informers' check covers an API server that
// does not answer.
func (c *permissionChecker) ready() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.missing) == 0 {
		return nil
	}
	var parts []string
	for _, n := range c.missing {
		parts = append(parts, fmt.Sprintf("missing %s (%s)", n.permission, n.owner))
	}
	return fmt.Errorf("%s", strings.Join(parts, "; "))
}
