package network

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/samplecrd/samplecrd-controller/cmd/samplecrd-controller/app"
	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
	"github.com/samplecrd/samplecrd-controller/pkg/backend"
	"github.com/samplecrd/samplecrd-controller/pkg/controller/network"
	clientset "github.com/samplecrd/samplecrd-controller/pkg/generated/clientset/versioned"
)

// The causes of the API server's refusals of a spec, "field: message", each part of a cause of an
// Invalid error (the API server puts the offending value before the message).
const (
	notCIDR     = "spec.cidr: cidr must be a CIDR such as 192.168.0.0/16 or fd00:10::/64"
	hostBits    = "spec.cidr: cidr must not have host bits set: give the network address, such as 192.168.0.0/16 rather than 192.168.1.0/16"
	tooSmall    = "spec.cidr: cidr is too small: it must hold the gateway and at least one more host (at most /30 for IPv4, /126 for IPv6)"
	notIP       = "spec.gateway: gateway must be an IP address such as 192.168.0.1 or fd00:10::1"
	outside     = "spec: gateway must be inside cidr"
	networkAddr = "spec: gateway must not be the network address of cidr"

	thisNetwork      = `spec.cidr: cidr must not overlap the "this network" range 0.0.0.0/8`
	loopback4        = "spec.cidr: cidr must not overlap the loopback range 127.0.0.0/8"
	linkLocal4       = "spec.cidr: cidr must not overlap the link-local range 169.254.0.0/16"
	multicast4       = "spec.cidr: cidr must not overlap the multicast range 224.0.0.0/4"
	limitedBroadcast = "spec.cidr: cidr must not overlap the limited broadcast range 255.255.255.255/32"
	unspecified6     = "spec.cidr: cidr must not overlap the unspecified range ::/128"
	loopback6        = "spec.cidr: cidr must not overlap the loopback range ::1/128"
	linkLocal6       = "spec.cidr: cidr must not overlap the link-local range fe80::/10"
	multicast6       = "spec.cidr: cidr must not overlap the multicast range ff00::/8"

	cidrTooLong    = "spec.cidr: Too long: may not be more than 49 bytes"
	gatewayTooLong = "spec.gateway: Too long: may not be more than 45 bytes"

	// policyMalformed starts the allowed-cidrs policy's refusal in a namespace whose annotation
	// it cannot read.
	policyMalformed = "the annotation " + samplecrdv1.AllowedCIDRsAnnotation + " of namespace "
)

// incompleteValidation is the API server's note that CEL rules did not run because the schema
// already refused the object; it comes with the schema's causes and is not one itself.
const incompleteValidation = "some validation rules were not checked because the object was invalid"

// foreignFinalizer is a finalizer of someone else's, which the controller must leave alone.
const foreignFinalizer = "example.com/hold"

// othersFinalizers are the finalizers of others that the test's Networks get: foreignFinalizer,
// and the one that a deletion with propagationPolicy Orphan adds, which no garbage collector
// removes here.
var othersFinalizers = []string{foreignFinalizer, metav1.FinalizerOrphanDependents}

// hostileCase is one case of TestHostileInput: a Network created from raw JSON, then, once it
// reached the outcome, changed by each step in turn.
type hostileCase struct {
	category, name string
	// annotations are those of the case's namespace.
	annotations map[string]string
	// older are Networks created in the case's namespace, valid and older than the case's own.
	older []samplecrdv1.NetworkSpec
	// body is the Network to create, as JSON data: apiVersion, kind and metadata.name are added
	// unless it has them (or a metadata.generateName). raw, when set, is sent instead, byte for
	// byte, with $name replaced by the Network's name.
	body map[string]any
	raw  string
	// fieldValidation is the fieldValidation parameter of the create; "" sends none, which
	// is Warn.
	fieldValidation string
	want            outcome
	steps           []step
}

// step changes a case's Network.
type step struct {
	what string
	do   func(ctx context.Context, r *hostileRun) error
	want outcome
}

// outcome is what a request must end in: refused with an HTTP status, or accepted with the
// Network in a given state.
type outcome struct {
	// code is the HTTP status of a refusal, 0 when the request must succeed.
	code int
	// causes are, for an Invalid (422) refusal, all its causes, "field: message" each (see
	// above), where the cause's message contains the message; for any other refusal, strings its
	// message must contain.
	causes []string
	// warnings are strings that the API server's warnings must contain, one warning each; a
	// create without any must get none.
	warnings []string
	// ready is the Ready condition the Network must reach, "Status/Reason", for the Network's
	// generation, with message in its message; "" waits for no condition.
	ready, message string
	// gone: the Network must be deleted.
	gone bool
	// check must return nil for the Network once it is as above; it is polled with it.
	check func(r *hostileRun, n *samplecrdv1.Network) error
}

func (o outcome) refused() bool { return o.code != 0 }

// waits reports whether the Network must reach a state after the request.
func (o outcome) waits() bool { return !o.refused() && (o.ready != "" || o.gone || o.check != nil) }

// invalid is a refusal as Invalid (422) with exactly causes.
func invalid(causes ...string) outcome { return outcome{code: 422, causes: causes} }

// refusal is a refusal with HTTP status code and a message containing each of causes.
func refusal(code int, causes ...string) outcome { return outcome{code: code, causes: causes} }

// synced is a Network programmed: Ready, Synced.
func synced() outcome {
	return outcome{ready: "True/" + samplecrdv1.ReasonSynced, message: network.MessageSynced}
}

// conflicting is a Network blocked by an older one, with message in its condition's message.
func conflicting(message string) outcome {
	return outcome{ready: "False/" + samplecrdv1.ReasonCIDRConflict, message: message}
}

// deleted is a Network gone.
func deleted() outcome { return outcome{gone: true} }

// warn is o with the warnings w.
func (o outcome) warn(w ...string) outcome { o.warnings = w; return o }

// checking is o with the check f.
func (o outcome) checking(f func(r *hostileRun, n *samplecrdv1.Network) error) outcome {
	o.check = f
	return o
}

// hostileRun is a case as it runs.
type hostileRun struct {
	tc *hostileCase
	// s acts in the case's namespace.
	s *setup
	// client sends the case's requests, and drops the warnings it gets rather than logging them.
	client clientset.Interface
	kube   kubernetes.Interface
	// name is the case's Network's name, as the API server named it.
	name string
	// created is the Network as the create returned it; last as last seen.
	created, last *samplecrdv1.Network
	// older are the names of the older Networks.
	older []string
	// err and warnings are the result of the stage's request.
	err      error
	warnings []string
	// waitErr says why the Network did not reach the stage's outcome.
	waitErr error
	// final is the last state the Network was seen to reach; broken stops the case.
	final  outcome
	broken bool
}

func (r *hostileRun) key() cache.ObjectName { return cache.ObjectName{Namespace: r.s.ns, Name: r.name} }

// TestHostileInput sends the API server and the network controller, with its OVN backend, what a
// careless or hostile user might: address classes, odd spellings, whitespace, zones, lengths,
// JSON of the wrong types, unknown fields, status and finalizers of the user's, metadata at its
// limits, updates and namespace annotations. Each request is either refused with an HTTP status and
// causes that name the field and the rule, or accepted with the Network ending in a given Ready
// condition. Then the controller must be quiet: no more syncs and no more writes, every Network
// still as it ended, and the OVN rows exactly those of the Ready Networks.
//
// Every case that may leave a Network has a namespace of its own, so that cases conflict only
// when they mean to.
func TestHostileInput(t *testing.T) {
	s := newSetup(t)
	ctx := context.Background()
	cfg := rest.CopyConfig(s.cfg)
	cfg.WarningHandler = rest.NoWarnings{}
	client := clientset.NewForConfigOrDie(cfg)
	kube := kubernetes.NewForConfigOrDie(s.cfg)
	var runs []*hostileRun
	for i, tc := range hostileCases() {
		r := &hostileRun{tc: &tc, s: s, client: client, kube: kube, name: fmt.Sprintf("h-%03d", i)}
		if !tc.want.refused() || tc.annotations != nil || tc.older != nil {
			r.s = s.addAnnotatedNamespace(t, tc.annotations)
		}
		runs = append(runs, r)
	}
	// Started with the namespaces there, it watches all of them. A periodic resync would sync
	// every key during the quiet check below; that a sync of an unchanged Network writes nothing
	// is TestRestartWritesNothing's.
	c := s.startController(t, func(o *app.Options) { o.ResyncPeriod = time.Hour })
	// Runs before deleteAll: the others' finalizers would hold their Networks forever.
	t.Cleanup(func() { dropOthersFinalizers(t, s) })

	start := time.Now()
	for stage := 0; ; stage++ {
		var active []*hostileRun
		for _, r := range runs {
			if !r.broken && (stage == 0 || stage <= len(r.tc.steps)) {
				active = append(active, r)
			}
		}
		if len(active) == 0 {
			break
		}
		for _, r := range active {
			if stage == 0 {
				r.create(ctx, t)
			} else {
				r.err, r.warnings = r.tc.steps[stage-1].do(ctx, r), nil
			}
		}
		waitStage(ctx, s, active, stage)
		for _, r := range active {
			label, want := r.tc.category+"/"+r.tc.name, r.tc.want
			if stage > 0 {
				label += "/" + r.tc.steps[stage-1].what
				want = r.tc.steps[stage-1].want
			}
			if !t.Run(label, func(t *testing.T) { r.report(t, want) }) {
				r.broken = true
			}
		}
	}
	t.Logf("%d cases, all outcomes reached in %v", len(runs), time.Since(start).Round(time.Millisecond))

	t.Run("quiet", func(t *testing.T) { checkQuiet(ctx, t, s, c) })
	t.Run("final", func(t *testing.T) { checkFinal(ctx, t, s, runs) })
}

// create sends the case's create request and records its result; the older Networks come first.
func (r *hostileRun) create(ctx context.Context, t *testing.T) {
	t.Helper()
	for i, spec := range r.tc.older {
		name := fmt.Sprintf("a-older-%d", i)
		r.s.create(t, name, spec.Cidr, spec.Gateway)
		r.older = append(r.older, name)
	}
	body := []byte(strings.ReplaceAll(r.tc.raw, "$name", r.name))
	if r.tc.raw == "" {
		// Shallow copies: a body may hold what encoding/json cannot decode, such as 1e400.
		obj := maps.Clone(r.tc.body)
		for k, v := range map[string]string{"apiVersion": samplecrdv1.SchemeGroupVersion.String(), "kind": "Network"} {
			if _, ok := obj[k]; !ok {
				obj[k] = v
			}
		}
		m, _ := obj["metadata"].(map[string]any)
		m = maps.Clone(m)
		if m == nil {
			m = map[string]any{}
		}
		if m["name"] == nil && m["generateName"] == nil {
			m["name"] = r.name
		}
		obj["metadata"] = m
		var err error
		if body, err = json.Marshal(obj); err != nil {
			t.Fatalf("%s: %v", r.tc.name, err)
		}
	}
	req := r.client.SamplecrdV1().RESTClient().Post().Namespace(r.s.ns).Resource("networks").Body(body)
	if r.tc.fieldValidation != "" {
		req = req.Param("fieldValidation", r.tc.fieldValidation)
	}
	res := req.Do(ctx)
	for _, w := range res.Warnings() {
		r.warnings = append(r.warnings, w.Text)
	}
	created := &samplecrdv1.Network{}
	if r.err = res.Into(created); r.err == nil {
		r.created, r.name = created, created.Name
	}
}

// report checks the result of the stage's request against want, and the Network's state.
func (r *hostileRun) report(t *testing.T, want outcome) {
	t.Helper()
	if err := checkResult(r.err, want); err != nil {
		t.Fatal(err)
	}
	if r.warnings != nil || want.warnings != nil {
		if len(r.warnings) != len(want.warnings) {
			t.Errorf("warnings %q, want %d containing %q", r.warnings, len(want.warnings), want.warnings)
		}
		for _, w := range want.warnings {
			if !slices.ContainsFunc(r.warnings, func(got string) bool { return strings.Contains(got, w) }) {
				t.Errorf("no warning containing %q; warnings %q", w, r.warnings)
			}
		}
	}
	if r.waitErr != nil {
		t.Fatalf("%v; last seen: %s", r.waitErr, describe(r.last))
	}
	if want.waits() {
		r.final = want
	}
}

// checkResult checks err, the result of a request, against want.
func checkResult(err error, want outcome) error {
	if !want.refused() {
		if err != nil {
			return fmt.Errorf("refused: %v", err)
		}
		return nil
	}
	if err == nil {
		return fmt.Errorf("accepted; want a refusal with HTTP status %d: %q", want.code, want.causes)
	}
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return fmt.Errorf("got %v, want a refusal with HTTP status %d", err, want.code)
	}
	if code := int(status.Status().Code); code != want.code {
		return fmt.Errorf("HTTP status %d (%v), want %d", code, err, want.code)
	}
	if want.code != 422 {
		for _, c := range want.causes {
			if !strings.Contains(err.Error(), c) {
				return fmt.Errorf("the refusal %q does not contain %q", err, c)
			}
		}
		return nil
	}
	var got []string
	if d := status.Status().Details; d != nil {
		for _, c := range d.Causes {
			if !strings.Contains(c.Message, incompleteValidation) {
				got = append(got, c.Field+": "+c.Message)
			}
		}
	}
	var problems []string
	for _, w := range want.causes {
		if !slices.ContainsFunc(got, func(g string) bool { return causeMatches(g, w) }) {
			problems = append(problems, fmt.Sprintf("no cause %q", w))
		}
	}
	for _, g := range got {
		if !slices.ContainsFunc(want.causes, func(w string) bool { return causeMatches(g, w) }) {
			problems = append(problems, fmt.Sprintf("unexpected cause %q", g))
		}
	}
	if problems != nil {
		return fmt.Errorf("%s\nin the refusal %v", strings.Join(problems, "\n"), err)
	}
	return nil
}

// causeMatches reports whether the cause got, "field: message", is want: the same field, and a
// message that contains want's.
func causeMatches(got, want string) bool {
	gf, gm, _ := strings.Cut(got, ": ")
	wf, wm, _ := strings.Cut(want, ": ")
	return gf == wf && strings.Contains(gm, wm)
}

// waitStage waits until the Network of every run that the stage accepted is as the stage wants,
// with one List of every Network per poll, and records why not in the run.
func waitStage(ctx context.Context, s *setup, runs []*hostileRun, stage int) {
	want := func(r *hostileRun) outcome {
		if stage == 0 {
			return r.tc.want
		}
		return r.tc.steps[stage-1].want
	}
	var pending []*hostileRun
	for _, r := range runs {
		r.waitErr = nil
		if w := want(r); w.waits() && r.err == nil {
			pending = append(pending, r)
		}
	}
	_ = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		list, err := s.client.SamplecrdV1().Networks(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		byKey := map[cache.ObjectName]*samplecrdv1.Network{}
		for i := range list.Items {
			byKey[cache.MetaObjectToName(&list.Items[i])] = &list.Items[i]
		}
		done := true
		for _, r := range pending {
			r.last = byKey[r.key()]
			r.waitErr = reached(r, want(r), r.last)
			done = done && r.waitErr == nil
		}
		return done, nil
	})
}

// reached returns nil when n, the Network of r as last seen (nil when there is none), is as want
// says, and else what is not.
func reached(r *hostileRun, want outcome, n *samplecrdv1.Network) error {
	if want.gone {
		if n != nil {
			return errors.New("the Network is not gone")
		}
		return nil
	}
	if n == nil {
		return errors.New("the Network does not exist")
	}
	if want.ready != "" {
		c := meta.FindStatusCondition(n.Status.Conditions, samplecrdv1.ConditionReady)
		if got := ready(n); got != want.ready || !strings.Contains(c.Message, want.message) {
			return fmt.Errorf("want Ready %s with a message containing %q", want.ready, want.message)
		}
		if n.Status.ObservedGeneration != n.Generation {
			return fmt.Errorf("status.observedGeneration %d, want the generation %d", n.Status.ObservedGeneration, n.Generation)
		}
	}
	if want.check != nil {
		return want.check(r, n)
	}
	return nil
}

// describe is the part of n that says what state it is in.
func describe(n *samplecrdv1.Network) string {
	if n == nil {
		return "none"
	}
	return fmt.Sprintf("generation %d, finalizers %q, deletionTimestamp %v, spec %+v, status %+v",
		n.Generation, n.Finalizers, n.DeletionTimestamp, n.Spec, n.Status)
}

// checkQuiet waits until the controller stops syncing, then watches every Network for a while:
// no sync and no write may come, and no key may have been synced more than a few times. A key
// that keeps being synced, or a Network whose status keeps being rewritten, is a loop.
func checkQuiet(ctx context.Context, t *testing.T, s *setup, c *controller) {
	total := func(counts map[cache.ObjectName]int) int {
		sum := 0
		for _, n := range counts {
			sum += n
		}
		return sum
	}
	// Quiet: no sync for a second.
	last, since := -1, time.Now()
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		if n := total(c.syncs.snapshot()); n != last {
			last, since = n, time.Now()
		}
		return time.Since(since) >= time.Second, nil
	})
	if err != nil {
		t.Fatalf("the controller did not stop syncing: %v", err)
	}
	before := c.syncs.snapshot()
	list, err := s.client.SamplecrdV1().Networks(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.client.SamplecrdV1().Networks(metav1.NamespaceAll).Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	var writes []string
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 2*time.Second, true, func(context.Context) (bool, error) {
		for {
			select {
			case e, open := <-w.ResultChan():
				if !open {
					return false, errors.New("the watch closed")
				}
				if n, ok := e.Object.(*samplecrdv1.Network); ok {
					writes = append(writes, fmt.Sprintf("%s %s/%s: %s", e.Type, n.Namespace, n.Name, describe(n)))
				} else {
					writes = append(writes, fmt.Sprintf("%s %v", e.Type, e.Object))
				}
			default:
				return len(writes) > 0 || total(c.syncs.snapshot()) != total(before), nil
			}
		}
	})
	if !wait.Interrupted(err) {
		t.Errorf("the controller was not quiet (%v): syncs %d -> %d, writes:\n%s",
			err, total(before), total(c.syncs.snapshot()), strings.Join(writes, "\n"))
	}
	// Bounded: the syncs that the events, the controller's own writes and the changes of the
	// other Networks of the namespace bring, for a Network of a few steps; 7 at most today.
	const maxSyncs = 20
	most, mostKey := 0, cache.ObjectName{}
	for key, n := range before {
		if n > maxSyncs {
			t.Errorf("%s was synced %d times, more than %d", key, n, maxSyncs)
		}
		if n > most {
			most, mostKey = n, key
		}
		for _, err := range c.syncs.failures(key) {
			// Transient: a stale cache, or a namespace's router created by another sync.
			if !errors.Is(err, backend.ErrConflict) && !apierrors.IsConflict(err) {
				t.Errorf("a sync of %s failed: %v", key, err)
			}
		}
	}
	t.Logf("%d keys, %d syncs in all, at most %d (%s)", len(before), total(before), most, mostKey)
}

// checkFinal checks, once the controller is quiet, that every Network is still in the last state
// its case reached, the older ones Ready, and that OVN holds the rows of the Ready Networks and
// of no other.
func checkFinal(ctx context.Context, t *testing.T, s *setup, runs []*hostileRun) {
	rows := s.db.Dump(t)
	for _, r := range runs {
		if r.broken || !r.final.waits() {
			continue
		}
		networks := r.s.client.SamplecrdV1().Networks(r.s.ns)
		for _, name := range r.older {
			n, err := networks.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				t.Errorf("%s: older Network %s: %v", r.tc.name, name, err)
				continue
			}
			if got := ready(n); got != "True/Synced" {
				t.Errorf("%s: older Network %s is %q, want True/Synced", r.tc.name, name, got)
				continue
			}
			checkProgrammed(t, rows, n)
		}
		n, err := networks.Get(ctx, r.name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			n = nil
		} else if err != nil {
			t.Errorf("%s: %v", r.tc.name, err)
			continue
		}
		if err := reached(r, r.final, n); err != nil {
			t.Errorf("%s: no longer as it ended: %v; now %s", r.tc.name, err, describe(n))
			continue
		}
		switch {
		case n == nil || n.DeletionTimestamp != nil:
			if o := owned(rows, r.created.UID); len(o.Switches)+len(o.SwitchPorts)+len(o.RouterPorts) != 0 {
				t.Errorf("%s: rows left of the deleted Network: %+v", r.tc.name, o)
			}
		case ready(n) == "True/Synced":
			checkProgrammed(t, rows, n)
		default:
			checkNoSwitch(t, rows, n)
		}
	}
}

// dropOthersFinalizers removes othersFinalizers from every Network of the test.
func dropOthersFinalizers(t *testing.T, s *setup) {
	ctx := context.Background()
	list, err := s.client.SamplecrdV1().Networks(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Errorf("listing Networks to drop the finalizers of others: %v", err)
		return
	}
	for _, n := range list.Items {
		kept := slices.DeleteFunc(slices.Clone(n.Finalizers), func(f string) bool { return slices.Contains(othersFinalizers, f) })
		if len(kept) == len(n.Finalizers) {
			continue
		}
		patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"resourceVersion": n.ResourceVersion, "finalizers": kept}})
		if _, err := s.client.SamplecrdV1().Networks(n.Namespace).Patch(ctx, n.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Errorf("dropping the finalizers of others from %s/%s: %v", n.Namespace, n.Name, err)
		}
	}
}

func deepCopyJSON(m map[string]any) map[string]any {
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return out
}
