package podcount

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
)

// syncCount counts the pods in the cache and sets the label of every control-plane node that
// does not carry that count yet.
func (c *Controller) syncCount(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	// A pod change from here on may be missed by this count: it asks for the next one.
	c.countDue.Store(false)
	pods := c.pods.List()
	count := len(pods)
	value := strconv.Itoa(count)
	if logger.V(4).Enabled() {
		// Every pod counted, for debugging a count.
		for _, p := range pods {
			if m, err := meta.Accessor(p); err == nil {
				logger.V(4).Info("pod name is", "pod", m.GetNamespace()+"."+m.GetName())
			}
		}
	}

	nodes, err := c.nodesLister.List(labels.Everything())
	if err != nil {
		return fmt.Errorf("listing nodes: %w", err)
	}
	var errs []error
	labelled := 0
	for _, n := range nodes {
		if !IsControlPlane(n) {
			continue
		}
		if n.Labels[c.labelKey] == value {
			continue
		}
		if err := c.setLabel(ctx, n.Name, value); err != nil {
			if apierrors.IsNotFound(err) {
				// Deleted since the cache saw it: nothing to label.
				continue
			}
			c.recorder.Eventf(n, corev1.EventTypeWarning, ReasonLabelFailed, "Setting %s=%s failed: %v", c.labelKey, value, err)
			errs = append(errs, fmt.Errorf("labelling node %s: %w", n.Name, err))
			continue
		}
		labelled++
		logger.V(2).Info("Labelled node with the pod count", "node", klog.KObj(n), "count", count, "previous", n.Labels[c.labelKey])
		if c.eventMode == EventsChanged {
			c.recorder.Eventf(n, corev1.EventTypeNormal, ReasonSuccessCalculatePod, "pod count is %d", count)
		}
	}
	if c.eventMode == EventsAll {
		// One event on every pod, every pass: EventsAll's compatibility mode.
		for _, p := range pods {
			m, err := meta.Accessor(p)
			if err != nil {
				continue
			}
			c.recorder.Eventf(&corev1.ObjectReference{
				Kind: "Pod", APIVersion: "v1", Namespace: m.GetNamespace(), Name: m.GetName(), UID: m.GetUID(),
			}, corev1.EventTypeNormal, ReasonSuccessCalculatePod, "pod count is %d", count)
		}
	}
	logger.V(4).Info("Counted pods", "count", count, "nodesLabelled", labelled)
	return errors.Join(errs...)
}

// setLabel sets the count label of one node with a merge patch, which touches that label only:
// an Update would overwrite whatever else changed on the node since the cache saw it.
func (c *Controller) setLabel(ctx context.Context, node, value string) error {
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"labels": map[string]string{c.labelKey: value}},
	})
	if err != nil {
		return err
	}
	_, err = c.client.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, patch, metav1.PatchOptions{})
	return err
}
