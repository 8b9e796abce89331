package deployments

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/formq/formq"
	"github.com/formq/formq/actions"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// kustomizations are the directories `kubectl apply -k` takes.
var kustomizations = []string{"k8s/base", "k8s/overlays/example"}

// expectedSecrets are the Secrets an operator creates before applying the
// manifests, with their keys; docs/operations.md lists the same. The
// manifests may reference only these, and must use every one.
var expectedSecrets = map[string][]string{
	"formq": {"secret", "redis-url", "redis-address", "redis-password", "admin-token", "s3-access-key", "s3-secret-key"},
}

// listenEnv names the setting that holds the listen address of each
// component: its probes and ports must agree with it.
var listenEnv = map[string]struct {
	name, def string
}{
	"api":    {"FORMQ_ADDR", formq.DefaultConfig().Addr},
	"worker": {"FORMQ_WORKER_ADDR", formq.DefaultConfig().WorkerAddr},
}

// configEnv returns the env tags of formq.Config and which of them hold
// secrets (tag secret:"true"). FORMQ_REDIS_URL counts as secret too: it
// may carry the Redis password.
func configEnv(t *testing.T) (names, secrets map[string]bool) {
	t.Helper()
	names, secrets = map[string]bool{}, map[string]bool{"FORMQ_REDIS_URL": true}
	for _, f := range reflect.VisibleFields(reflect.TypeFor[formq.Config]()) {
		if n := f.Tag.Get("env"); n != "" {
			names[n] = true
			if f.Tag.Get("secret") == "true" {
				secrets[n] = true
			}
		}
	}
	if len(names) == 0 {
		t.Fatal("formq.Config has no env tags")
	}
	return names, secrets
}

// kustomization is the strict subset of kustomize.config.k8s.io/v1beta1
// Kustomization the manifests use; a field outside it fails the test.
type kustomization struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Labels     []struct {
		Pairs            map[string]string `json:"pairs"`
		IncludeSelectors bool              `json:"includeSelectors,omitempty"`
		IncludeTemplates bool              `json:"includeTemplates,omitempty"`
	} `json:"labels,omitempty"`
	Resources []string `json:"resources,omitempty"`
	Images    []struct {
		Name    string `json:"name"`
		NewName string `json:"newName,omitempty"`
		NewTag  string `json:"newTag,omitempty"`
		Digest  string `json:"digest,omitempty"`
	} `json:"images,omitempty"`
	ConfigMapGenerator []struct {
		Name     string   `json:"name"`
		Behavior string   `json:"behavior,omitempty"`
		Files    []string `json:"files,omitempty"`
		Literals []string `json:"literals,omitempty"`
	} `json:"configMapGenerator,omitempty"`
	Patches []struct {
		Path string `json:"path"`
	} `json:"patches,omitempty"`
}

// manifests are the objects of one kustomization, by kind and name.
type manifests struct {
	deployments   map[string]*appsv1.Deployment
	services      map[string]*corev1.Service
	hpas          map[string]*autoscalingv2.HorizontalPodAutoscaler
	pdbs          map[string]*policyv1.PodDisruptionBudget
	configMaps    map[string]bool // names, generated or declared
	namespaces    map[string]bool
	scaledObjects map[string]*scaledObject
	triggerAuths  map[string]*triggerAuthentication
	patches       []any // overlay patches, decoded strictly
}

func newManifests() *manifests {
	return &manifests{
		deployments: map[string]*appsv1.Deployment{}, services: map[string]*corev1.Service{},
		hpas: map[string]*autoscalingv2.HorizontalPodAutoscaler{}, pdbs: map[string]*policyv1.PodDisruptionBudget{},
		configMaps: map[string]bool{}, namespaces: map[string]bool{},
		scaledObjects: map[string]*scaledObject{}, triggerAuths: map[string]*triggerAuthentication{},
	}
}

// documents splits a multi-document YAML stream.
func documents(data []byte) [][]byte {
	var out [][]byte
	for doc := range bytes.SplitSeq(data, []byte("\n---")) {
		if len(bytes.TrimSpace(stripComments(doc))) > 0 {
			out = append(out, doc)
		}
	}
	return out
}

func stripComments(doc []byte) []byte {
	var b bytes.Buffer
	for line := range bytes.Lines(doc) {
		if !bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
			b.Write(line)
		}
	}
	return b.Bytes()
}

// decode reads one document strictly into the Kubernetes or KEDA type of
// its kind. A patch is decoded the same way but kept aside.
func (m *manifests) decode(doc []byte, patch bool) error {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return err
	}
	strict := func(into any) error { return yaml.UnmarshalStrict(doc, into) }
	var obj any
	var name string
	switch tm.APIVersion + " " + tm.Kind {
	case "apps/v1 Deployment":
		d := &appsv1.Deployment{}
		if err := strict(d); err != nil {
			return err
		}
		obj, name = d, d.Name
		if !patch {
			m.deployments[name] = d
		}
	case "v1 Service":
		s := &corev1.Service{}
		if err := strict(s); err != nil {
			return err
		}
		obj, name = s, s.Name
		if !patch {
			m.services[name] = s
		}
	case "autoscaling/v2 HorizontalPodAutoscaler":
		h := &autoscalingv2.HorizontalPodAutoscaler{}
		if err := strict(h); err != nil {
			return err
		}
		obj, name = h, h.Name
		if !patch {
			m.hpas[name] = h
		}
	case "policy/v1 PodDisruptionBudget":
		p := &policyv1.PodDisruptionBudget{}
		if err := strict(p); err != nil {
			return err
		}
		obj, name = p, p.Name
		if !patch {
			m.pdbs[name] = p
		}
	case "v1 ConfigMap":
		c := &corev1.ConfigMap{}
		if err := strict(c); err != nil {
			return err
		}
		obj, name = c, c.Name
		m.configMaps[name] = true
	case "v1 Namespace":
		n := &corev1.Namespace{}
		if err := strict(n); err != nil {
			return err
		}
		obj, name = n, n.Name
		m.namespaces[name] = true
	case "keda.sh/v1alpha1 ScaledObject":
		s := &scaledObject{}
		if err := strict(s); err != nil {
			return err
		}
		obj, name = s, s.Name
		if !patch {
			m.scaledObjects[name] = s
		}
	case "keda.sh/v1alpha1 TriggerAuthentication":
		a := &triggerAuthentication{}
		if err := strict(a); err != nil {
			return err
		}
		obj, name = a, a.Name
		if !patch {
			m.triggerAuths[name] = a
		}
	case "v1 Secret":
		return errors.New("a Secret in the manifests: secrets are referenced, never inlined")
	default:
		return fmt.Errorf("unexpected kind %q %q", tm.APIVersion, tm.Kind)
	}
	if name == "" {
		return fmt.Errorf("%s without a name", tm.Kind)
	}
	if patch {
		m.patches = append(m.patches, obj)
	}
	return nil
}

// loadKustomization reads dir's kustomization, its resources (recursing
// into bases) and its patches, failing on anything it cannot decode or
// find.
func loadKustomization(t *testing.T, dir string, m *manifests) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k kustomization
	if err := yaml.UnmarshalStrict(data, &k); err != nil {
		t.Fatalf("%s/kustomization.yaml: %v", dir, err)
	}
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		t.Errorf("%s/kustomization.yaml: apiVersion/kind %q %q", dir, k.APIVersion, k.Kind)
	}
	if len(k.Resources) == 0 {
		t.Errorf("%s: no resources", dir)
	}
	for _, r := range k.Resources {
		p := filepath.Join(dir, r)
		st, err := os.Stat(p)
		if err != nil {
			t.Errorf("%s: resource %s: %v", dir, r, err)
			continue
		}
		if st.IsDir() {
			loadKustomization(t, p, m)
			continue
		}
		loadFile(t, p, m, false)
	}
	for _, g := range k.ConfigMapGenerator {
		m.configMaps[g.Name] = true
		for _, f := range g.Files {
			if _, src, ok := strings.Cut(f, "="); ok {
				f = src
			}
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				t.Errorf("%s: configMapGenerator %s: %v", dir, g.Name, err)
			}
		}
	}
	for _, p := range k.Patches {
		loadFile(t, filepath.Join(dir, p.Path), m, true)
	}
}

func loadFile(t *testing.T, path string, m *manifests, patch bool) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Error(err)
		return
	}
	docs := documents(data)
	if len(docs) == 0 {
		t.Errorf("%s: no documents", path)
	}
	for i, doc := range docs {
		if err := m.decode(doc, patch); err != nil {
			t.Errorf("%s (document %d): %v", path, i+1, err)
		}
	}
}

// TestManifestsDecodeStrictlyAndAgree reads every kustomization's files
// strictly and checks their cross references.
func TestManifestsDecodeStrictlyAndAgree(t *testing.T) {
	env, secretEnv := configEnv(t)
	for _, dir := range kustomizations {
		t.Run(dir, func(t *testing.T) {
			m := newManifests()
			loadKustomization(t, dir, m)
			if len(m.deployments) != 2 || m.deployments["formq-api"] == nil || m.deployments["formq-worker"] == nil {
				t.Fatalf("want the deployments formq-api and formq-worker, have %v", slices.Sorted(maps.Keys(m.deployments)))
			}
			for _, err := range m.check(env, secretEnv) {
				t.Error(err)
			}
			for _, err := range m.checkPatches(env, secretEnv) {
				t.Error(err)
			}
		})
	}
}

// TestRenderedManifestsAgree renders each kustomization with `kubectl
// kustomize` (offline) and checks the result the cluster would get: the
// generated ConfigMap names, labels added to selectors, patches applied.
func TestRenderedManifestsAgree(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl is not installed; the files were checked one by one above")
	}
	env, secretEnv := configEnv(t)
	for _, dir := range kustomizations {
		t.Run(dir, func(t *testing.T) {
			out, err := exec.Command(kubectl, "kustomize", dir).Output()
			if err != nil {
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, ee.Stderr)
				}
				t.Fatal(err)
			}
			m := newManifests()
			for i, doc := range documents(out) {
				if err := m.decode(doc, false); err != nil {
					t.Errorf("rendered document %d: %v", i+1, err)
				}
			}
			if len(m.deployments) != 2 {
				t.Fatalf("rendered %d deployments, want 2", len(m.deployments))
			}
			for _, err := range m.check(env, secretEnv) {
				t.Error(err)
			}
		})
	}
}

// TestCheckFindsBrokenManifests breaks the base one way at a time and
// expects check to notice, so the tests above cannot pass by checking
// nothing.
func TestCheckFindsBrokenManifests(t *testing.T) {
	env, secretEnv := configEnv(t)
	cases := []struct {
		name    string
		breakIt func(m *manifests)
		want    string
	}{
		{"probe path", func(m *manifests) {
			m.deployments["formq-api"].Spec.Template.Spec.Containers[0].ReadinessProbe.HTTPGet.Path = "/ready"
		}, "readiness probe"},
		{"probe port", func(m *manifests) {
			m.deployments["formq-worker"].Spec.Template.Spec.Containers[0].LivenessProbe.HTTPGet.Port = intstr.FromInt32(8081)
		}, "liveness probe"},
		{"service target port", func(m *manifests) {
			m.services["formq-api"].Spec.Ports[0].TargetPort = intstr.FromString("web")
		}, "targetPort"},
		{"service selector", func(m *manifests) {
			m.services["formq-api"].Spec.Selector = map[string]string{"app.kubernetes.io/component": "apu"}
		}, "selects no deployment"},
		{"deployment selector", func(m *manifests) {
			m.deployments["formq-worker"].Spec.Template.Labels = map[string]string{"x": "y"}
		}, "selector does not match"},
		{"unknown setting", func(m *manifests) {
			c := &m.deployments["formq-api"].Spec.Template.Spec.Containers[0]
			c.Env = append(c.Env, corev1.EnvVar{Name: "FORMQ_NO_SUCH_SETTING", Value: "1"})
		}, "FORMQ_NO_SUCH_SETTING"},
		{"secret inlined", func(m *manifests) {
			c := &m.deployments["formq-api"].Spec.Template.Spec.Containers[0]
			c.Env = append(c.Env, corev1.EnvVar{Name: "FORMQ_SECRET", Value: "inline-secret-value-of-32-characters"})
		}, "must come from a Secret"},
		{"unknown secret key", func(m *manifests) {
			c := &m.deployments["formq-worker"].Spec.Template.Spec.Containers[0]
			for i := range c.Env {
				if c.Env[i].ValueFrom != nil && c.Env[i].ValueFrom.SecretKeyRef != nil {
					c.Env[i].ValueFrom.SecretKeyRef.Key = "typo"
				}
			}
		}, "not an expected Secret key"},
		{"no requests", func(m *manifests) {
			m.deployments["formq-worker"].Spec.Template.Spec.Containers[0].Resources.Requests = nil
		}, "resource requests"},
		{"keda target", func(m *manifests) {
			m.scaledObjects["formq-worker"].Spec.ScaleTargetRef.Name = "formq-workers"
		}, "scales formq-workers"},
		{"keda list", func(m *manifests) {
			m.scaledObjects["formq-worker"].Spec.Triggers[0].Metadata["listName"] = "asynq:default:pending"
		}, "listName"},
		{"keda metadata", func(m *manifests) {
			m.scaledObjects["formq-worker"].Spec.Triggers[0].Metadata["lisLength"] = "5"
		}, "lisLength"},
		{"configmap", func(m *manifests) {
			delete(m.configMaps, "formq-actions")
		}, "ConfigMap formq-actions"},
		{"hpa target", func(m *manifests) {
			m.hpas["formq-api"].Spec.ScaleTargetRef.Name = "api"
		}, "scales Deployment api"},
		{"pdb selector", func(m *manifests) {
			m.pdbs["formq-api"].Spec.Selector.MatchLabels = map[string]string{"a": "b"}
		}, "selects no deployment"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := newManifests()
			loadKustomization(t, "k8s/base", m)
			if errs := m.check(env, secretEnv); len(errs) > 0 {
				t.Fatalf("the base has problems before breaking it: %v", errs)
			}
			tc.breakIt(m)
			errs := m.check(env, secretEnv)
			if !slices.ContainsFunc(errs, func(err error) bool { return strings.Contains(err.Error(), tc.want) }) {
				t.Errorf("check found %v, want a problem mentioning %q", errs, tc.want)
			}
		})
	}
}

// TestActionsConfigMapFiles checks that every actions file the
// kustomizations ship loads, as the processes would load it.
func TestActionsConfigMapFiles(t *testing.T) {
	for _, p := range []string{"k8s/base/actions.yaml", "k8s/overlays/example/actions.yaml"} {
		if _, err := actions.LoadFile(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
}

// listenPort is the port of a listen address like ":8080".
func listenPort(addr string) int32 {
	_, p, _ := strings.Cut(addr, ":")
	n, _ := strconv.Atoi(p)
	return int32(n)
}

var pendingList = regexp.MustCompile(`^asynq:\{([A-Za-z0-9_.-]+)\}:pending$`)

// TestDecodeIsStrict shows that a misspelt or unknown field fails, in the
// Kubernetes types and in the KEDA structs alike.
func TestDecodeIsStrict(t *testing.T) {
	cases := []struct{ name, doc string }{
		{"deployment field", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replica: 2}\n"},
		{"container field", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  template:\n    spec:\n      containers: [{name: a, imag: b}]\n"},
		{"scaledobject field", "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: x}\nspec: {maxReplicas: 3, scaleTargetRef: {name: y}, triggers: []}\n"},
		{"secret", "apiVersion: v1\nkind: Secret\nmetadata: {name: x}\nstringData: {a: b}\n"},
		{"unknown kind", "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := newManifests().decode([]byte(tc.doc), false); err == nil {
				t.Errorf("decoded without error:\n%s", tc.doc)
			}
		})
	}
	ok := "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicas: 2}\n"
	if err := newManifests().decode([]byte(ok), false); err != nil {
		t.Errorf("a correct document failed: %v", err)
	}
}

// TestAPITusTempDirIsWritable: the API's root filesystem is read-only,
// and resumable uploads buffer their parts on disk under
// FORMQ_TUS_TEMP_DIR: every kustomization mounts a volume there.
func TestAPITusTempDirIsWritable(t *testing.T) {
	for _, dir := range kustomizations {
		m := newManifests()
		loadKustomization(t, dir, m)
		api := m.deployments["formq-api"]
		if api == nil {
			t.Fatalf("%s: no formq-api", dir)
		}
		c := api.Spec.Template.Spec.Containers[0]
		temp := ""
		for _, e := range c.Env {
			if e.Name == "FORMQ_TUS_TEMP_DIR" {
				temp = e.Value
			}
		}
		mounted := false
		for _, v := range c.VolumeMounts {
			if temp != "" && !v.ReadOnly && (temp == v.MountPath || strings.HasPrefix(temp, v.MountPath+"/")) {
				mounted = true
			}
		}
		if !mounted {
			t.Errorf("%s: FORMQ_TUS_TEMP_DIR %q is not on a writable volume of formq-api", dir, temp)
		}
	}
}
