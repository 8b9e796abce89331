package deployments

import (
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/formq/formq/submission"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// check returns every broken cross reference of m: selectors and labels,
// ports and probes, settings and Secrets, scalers and their targets.
func (m *manifests) check(env, secretEnv map[string]bool) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	usedSecrets := map[string]bool{}
	useSecret := func(where, name, key string) {
		if !slices.Contains(expectedSecrets[name], key) {
			bad("%s: Secret %s key %s is not an expected Secret key (see expectedSecrets and docs/operations.md)", where, name, key)
		}
		usedSecrets[name+"/"+key] = true
	}

	scaledBy := map[string]string{}
	for _, h := range m.hpas {
		ref := h.Spec.ScaleTargetRef
		if ref.Kind != "Deployment" || m.deployments[ref.Name] == nil {
			bad("HPA %s scales %s %s, which is not a Deployment here", h.Name, ref.Kind, ref.Name)
			continue
		}
		scaledBy[ref.Name] += "HPA "
	}
	for _, s := range m.scaledObjects {
		errs = append(errs, m.checkScaledObject(s, useSecret)...)
		ref := s.Spec.ScaleTargetRef
		if m.deployments[ref.Name] != nil && (ref.Kind == "" || ref.Kind == "Deployment") {
			scaledBy[ref.Name] += "KEDA "
		}
	}
	for _, a := range m.triggerAuths {
		for _, r := range a.Spec.SecretTargetRef {
			if !redisAuthParams[r.Parameter] {
				bad("TriggerAuthentication %s: parameter %q is not one of the redis scaler's", a.Name, r.Parameter)
			}
			useSecret("TriggerAuthentication "+a.Name, r.Name, r.Key)
		}
	}

	for name, d := range m.deployments {
		errs = append(errs, m.checkDeployment(d, env, secretEnv, useSecret)...)
		switch scaledBy[name] {
		case "HPA ", "KEDA ":
			if d.Spec.Replicas != nil {
				bad("Deployment %s sets replicas although an autoscaler owns them", name)
			}
		case "":
			bad("Deployment %s has no autoscaler (HPA or KEDA ScaledObject)", name)
		default:
			bad("Deployment %s is scaled by more than one autoscaler: %s", name, scaledBy[name])
		}
	}
	for _, s := range m.services {
		sel := labels.SelectorFromSet(s.Spec.Selector)
		var matched []*appsv1.Deployment
		for _, d := range m.deployments {
			if len(s.Spec.Selector) > 0 && sel.Matches(labels.Set(d.Spec.Template.Labels)) {
				matched = append(matched, d)
			}
		}
		if len(matched) != 1 {
			bad("Service %s selects no deployment or more than one (%d)", s.Name, len(matched))
			continue
		}
		for _, p := range s.Spec.Ports {
			if _, ok := containerPort(matched[0], p.TargetPort); !ok {
				bad("Service %s port %s: targetPort %s is no container port of Deployment %s", s.Name, p.Name, p.TargetPort.String(), matched[0].Name)
			}
		}
	}
	for _, p := range m.pdbs {
		sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
		if err != nil || sel.Empty() {
			bad("PodDisruptionBudget %s: bad selector: %v", p.Name, err)
			continue
		}
		if !slices.ContainsFunc(slices.Collect(maps.Values(m.deployments)), func(d *appsv1.Deployment) bool { return sel.Matches(labels.Set(d.Spec.Template.Labels)) }) {
			bad("PodDisruptionBudget %s selects no deployment", p.Name)
		}
	}
	for name, keys := range expectedSecrets {
		for _, k := range keys {
			if !usedSecrets[name+"/"+k] {
				bad("expected Secret key %s/%s is used by nothing", name, k)
			}
		}
	}
	return errs
}

func (m *manifests) checkDeployment(d *appsv1.Deployment, env, secretEnv map[string]bool, useSecret func(where, name, key string)) []error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("Deployment %s: "+format, append([]any{d.Name}, args...)...))
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || sel.Empty() || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		bad("selector does not match the pod template's labels (%v)", err)
	}
	component := d.Spec.Template.Labels["app.kubernetes.io/component"]
	listen, ok := listenEnv[component]
	if !ok {
		bad("pod label app.kubernetes.io/component %q is neither api nor worker", component)
		return errs
	}
	pod := d.Spec.Template.Spec
	for _, v := range pod.Volumes {
		if v.ConfigMap != nil && !m.configMaps[v.ConfigMap.Name] {
			bad("volume %s mounts ConfigMap %s, which nothing creates", v.Name, v.ConfigMap.Name)
		}
		if v.Secret != nil {
			useSecret("Deployment "+d.Name, v.Secret.SecretName, "")
		}
	}
	if len(pod.Containers) != 1 {
		bad("has %d containers, want 1", len(pod.Containers))
		return errs
	}
	c := pod.Containers[0]
	addr := listen.def
	for _, e := range c.Env {
		errs = append(errs, checkEnv("Deployment "+d.Name, e, env, secretEnv, useSecret)...)
		if e.Name == listen.name {
			addr = e.Value
		}
	}
	for _, e := range c.EnvFrom {
		bad("envFrom %v: list settings one by one so that they can be checked", e)
	}
	port := listenPort(addr)
	if !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.ContainerPort == port }) {
		bad("no container port %d, where %s=%q listens", port, listen.name, addr)
	}
	probes := []struct {
		kind, path string
		probe      *corev1.Probe
		required   bool
	}{
		{"liveness", "/healthz", c.LivenessProbe, true},
		{"readiness", "/readyz", c.ReadinessProbe, true},
		{"startup", "/healthz", c.StartupProbe, false},
	}
	for _, p := range probes {
		if p.probe == nil {
			if p.required {
				bad("no %s probe", p.kind)
			}
			continue
		}
		if p.probe.HTTPGet == nil || p.probe.HTTPGet.Path != p.path {
			bad("%s probe is not GET %s", p.kind, p.path)
			continue
		}
		if n, ok := containerPort(d, p.probe.HTTPGet.Port); !ok || n != port {
			bad("%s probe port %s is not the container port %d of %s", p.kind, p.probe.HTTPGet.Port.String(), port, listen.name)
		}
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
		bad("container %s has no cpu and memory resource requests", c.Name)
	}
	if pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot {
		bad("pods must set runAsNonRoot")
	}
	return errs
}

// checkEnv checks one environment variable of a container or patch.
func checkEnv(where string, e corev1.EnvVar, env, secretEnv map[string]bool, useSecret func(where, name, key string)) []error {
	var errs []error
	if len(e.Name) > 6 && e.Name[:6] == "FORMQ_" && !env[e.Name] {
		errs = append(errs, fmt.Errorf("%s: env %s is not a setting formq reads (formq.Config)", where, e.Name))
	}
	if secretEnv[e.Name] && (e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil) {
		errs = append(errs, fmt.Errorf("%s: env %s holds a secret and must come from a Secret (secretKeyRef)", where, e.Name))
	}
	if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
		useSecret(where+" env "+e.Name, e.ValueFrom.SecretKeyRef.Name, e.ValueFrom.SecretKeyRef.Key)
	}
	return errs
}

func (m *manifests) checkScaledObject(s *scaledObject, useSecret func(where, name, key string)) []error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("ScaledObject %s: "+format, append([]any{s.Name}, args...)...))
	}
	ref := s.Spec.ScaleTargetRef
	if (ref.Kind != "" && ref.Kind != "Deployment") || m.deployments[ref.Name] == nil {
		bad("scales %s, which is not a Deployment here", ref.Name)
	}
	if s.Spec.MaxReplicaCount == nil || s.Spec.MinReplicaCount == nil || *s.Spec.MinReplicaCount > *s.Spec.MaxReplicaCount {
		bad("needs minReplicaCount <= maxReplicaCount")
	}
	queues := map[string]bool{}
	for i, tr := range s.Spec.Triggers {
		if tr.Type != "redis" {
			bad("trigger %d: type %q, want redis (asynq's pending lists)", i, tr.Type)
			continue
		}
		for k := range tr.Metadata {
			if !redisTriggerKeys[k] {
				bad("trigger %d: metadata %q is not a redis scaler setting", i, k)
			}
		}
		if q := pendingList.FindStringSubmatch(tr.Metadata["listName"]); q == nil {
			bad("trigger %d: listName %q is not an asynq pending list asynq:{QUEUE}:pending", i, tr.Metadata["listName"])
		} else {
			queues[q[1]] = true
		}
		if n, err := strconv.Atoi(tr.Metadata["listLength"]); err != nil || n <= 0 {
			bad("trigger %d: listLength %q, want a positive number", i, tr.Metadata["listLength"])
		}
		if tr.AuthenticationRef == nil || m.triggerAuths[tr.AuthenticationRef.Name] == nil {
			bad("trigger %d: authenticationRef names no TriggerAuthentication here", i)
		}
	}
	if !queues[submission.DefaultQueue] {
		bad("no trigger watches the %q queue", submission.DefaultQueue)
	}
	return errs
}

// checkPatches checks what an overlay's patches say: their targets exist
// and the settings they add are real.
func (m *manifests) checkPatches(env, secretEnv map[string]bool) []error {
	var errs []error
	noSecret := func(where, name, key string) {
		if !slices.Contains(expectedSecrets[name], key) {
			errs = append(errs, fmt.Errorf("%s: Secret %s key %s is not an expected Secret key", where, name, key))
		}
	}
	for _, p := range m.patches {
		switch p := p.(type) {
		case *appsv1.Deployment:
			target := m.deployments[p.Name]
			if target == nil {
				errs = append(errs, fmt.Errorf("patch of Deployment %s, which the base does not have", p.Name))
				continue
			}
			for _, c := range p.Spec.Template.Spec.Containers {
				if !slices.ContainsFunc(target.Spec.Template.Spec.Containers, func(t corev1.Container) bool { return t.Name == c.Name }) {
					errs = append(errs, fmt.Errorf("patch of Deployment %s: no container %s in the base", p.Name, c.Name))
				}
				for _, e := range c.Env {
					errs = append(errs, checkEnv("patch of Deployment "+p.Name, e, env, secretEnv, noSecret)...)
				}
			}
		case *scaledObject:
			if m.scaledObjects[p.Name] == nil {
				errs = append(errs, fmt.Errorf("patch of ScaledObject %s, which the base does not have", p.Name))
			}
		default:
			errs = append(errs, fmt.Errorf("patch of an unexpected type %T", p))
		}
	}
	return errs
}

// containerPort resolves a named or numbered port of d's container.
func containerPort(d *appsv1.Deployment, p intstr.IntOrString) (int32, bool) {
	for _, c := range d.Spec.Template.Spec.Containers {
		for _, cp := range c.Ports {
			if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
				return cp.ContainerPort, true
			}
		}
	}
	return 0, false
}
