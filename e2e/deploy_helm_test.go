package e2e

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/anteroom/anteroom/config"
)

const chartDir = "../deploy/helm/anteroom"

// helm runs the helm binary with args and returns its combined output and
// error.
func helm(bin string, args ...string) (string, error) {
	out, err := exec.Command(bin, args...).CombinedOutput()
	return string(out), err
}

// manifests decodes helm template's output into objects by kind and name.
func manifests(t *testing.T, rendered string) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	dec := yaml.NewDecoder(strings.NewReader(rendered))
	for {
		var obj map[string]any
		err := dec.Decode(&obj)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("helm template wrote YAML that does not decode: %v\n%s", err, rendered)
		}
		if obj == nil {
			continue
		}
		kind, _ := obj["kind"].(string)
		name, _ := dig(obj, "metadata", "name").(string)
		out[kind+"/"+name] = obj
	}
	return out
}

// dig walks maps by key and lists by index (an int).
func dig(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

// The chart lints clean (helm lint --strict) and renders what Kubernetes
// needs to run Anteroom well: at least two replicas, probes on the
// listener that serves /readyz and /healthz (ops.listen, since with it the
// public listener answers them 404), a non-root, read-only container
// without capabilities, resources, a PodDisruptionBudget, a Service of
// the public port alone, keys in a Secret, and a ConfigMap that Anteroom's
// own config.Parse accepts with the Secret's environment.
func TestHelmChartRenders(t *testing.T) {
	bin := findTool(t, "helm", "build helm.sh/helm/v4/cmd/helm@v4.3.2 as .ci/run does")
	set := []string{
		"--set", "secretEnv.ANTEROOM_COOKIE_KEY=" + cookieKey,
		"--set", "secretEnv.ANTEROOM_ADMIN_TOKEN=" + adminToken,
		"--set", "secretEnv.SHOP_CLIENT_SECRET=" + secret,
	}
	if out, err := helm(bin, append([]string{"lint", "--strict", chartDir}, set...)...); err != nil {
		t.Fatalf("helm lint --strict: %v\n%s", err, out)
	}
	// A release without its cookie key is refused, naming the value.
	if out, err := helm(bin, "template", "shop", chartDir); err == nil || !strings.Contains(out, "secretEnv.ANTEROOM_COOKIE_KEY is required") {
		t.Errorf("helm template without a cookie key: %v\n%s", err, out)
	}
	rendered, err := helm(bin, append([]string{"template", "shop", chartDir, "--set", "serviceMonitor.enabled=true"}, set...)...)
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, rendered)
	}
	objs := manifests(t, rendered)
	get := func(key string) map[string]any {
		t.Helper()
		o, ok := objs[key]
		if !ok {
			keys := make([]string, 0, len(objs))
			for k := range objs {
				keys = append(keys, k)
			}
			t.Fatalf("helm template rendered no %s; it rendered %q", key, keys)
		}
		return o
	}
	deploy := get("Deployment/shop-anteroom")
	if n, _ := dig(deploy, "spec", "replicas").(int); n < 2 {
		t.Errorf("replicas: %v, want at least 2", dig(deploy, "spec", "replicas"))
	}
	pod := dig(deploy, "spec", "template", "spec")
	for path, want := range map[string]any{
		"securityContext.runAsNonRoot":                          true,
		"securityContext.runAsUser":                             65532,
		"automountServiceAccountToken":                          false,
		"containers.0.securityContext.readOnlyRootFilesystem":   true,
		"containers.0.securityContext.allowPrivilegeEscalation": false,
		"containers.0.securityContext.capabilities.drop.0":      "ALL",
		"containers.0.readinessProbe.httpGet.path":              "/readyz",
		"containers.0.readinessProbe.httpGet.port":              "ops",
		"containers.0.livenessProbe.httpGet.path":               "/healthz",
		"containers.0.livenessProbe.httpGet.port":               "ops",
		"containers.0.ports.0.name":                             "http",
		"containers.0.ports.1.name":                             "ops",
		"containers.0.envFrom.0.secretRef.name":                 "shop-anteroom",
		"volumes.0.configMap.name":                              "shop-anteroom",
		"containers.0.volumeMounts.0.mountPath":                 "/etc/anteroom",
	} {
		var p []any
		for _, s := range strings.Split(path, ".") {
			if s >= "0" && s <= "9" {
				p = append(p, int(s[0]-'0'))
			} else {
				p = append(p, s)
			}
		}
		if got := dig(pod, p...); got != want {
			t.Errorf("pod spec %s = %v, want %v", path, got, want)
		}
	}
	// No hash of the secrets where whoever reads pods can test guesses.
	for k := range dig(deploy, "spec", "template", "metadata", "annotations").(map[string]any) {
		if strings.Contains(k, "secret") {
			t.Errorf("pod annotation %s: the secrets' hash is not for the pod spec", k)
		}
	}
	for _, r := range []string{"requests", "limits"} {
		if m, _ := dig(pod, "containers", 0, "resources", r).(map[string]any); len(m) == 0 {
			t.Errorf("pod spec has no resources.%s", r)
		}
	}
	httpPort := dig(pod, "containers", 0, "ports", 0, "containerPort")
	opsPort := dig(pod, "containers", 0, "ports", 1, "containerPort")

	// The configuration: valid for Anteroom with the Secret's values, and
	// its listeners are the ports the probes and the Service use.
	secretEnv := map[string]string{}
	for k, v := range dig(get("Secret/shop-anteroom"), "stringData").(map[string]any) {
		secretEnv[k], _ = v.(string)
	}
	file, _ := dig(get("ConfigMap/shop-anteroom"), "data", "anteroom.yaml").(string)
	cfg, err := config.Parse([]byte(file), func(k string) (string, bool) { v, ok := secretEnv[k]; return v, ok })
	if err != nil {
		t.Fatalf("the ConfigMap's anteroom.yaml does not load: %v\n%s", err, file)
	}
	port := func(addr string) any {
		_, p, _ := net.SplitHostPort(addr)
		var n int
		for _, c := range p {
			n = n*10 + int(c-'0')
		}
		return n
	}
	if !cfg.Ops.Separate() || port(cfg.Ops.Listen) != opsPort || port(cfg.Listen) != httpPort {
		t.Errorf("listen %s and ops.listen %s, want the container's ports %v and %v", cfg.Listen, cfg.Ops.Listen, httpPort, opsPort)
	}
	if cfg.Secrets.CookieKeys[0] != cookieKey || cfg.Redis.URL == "" {
		t.Errorf("the configuration's cookie key %q (from the Secret) and Redis URL %q", cfg.Secrets.CookieKeys[0], cfg.Redis.URL)
	}

	// The Service carries visitors' traffic only.
	svc := get("Service/shop-anteroom")
	if ports, _ := dig(svc, "spec", "ports").([]any); len(ports) != 1 || dig(ports, 0, "targetPort") != "http" {
		t.Errorf("Service ports %v, want the http port alone", dig(svc, "spec", "ports"))
	}
	podLabels := dig(deploy, "spec", "template", "metadata", "labels").(map[string]any)
	matches := func(selector any) bool {
		m, _ := selector.(map[string]any)
		for k, v := range m {
			if podLabels[k] != v {
				return false
			}
		}
		return len(m) > 0
	}
	if !matches(dig(svc, "spec", "selector")) {
		t.Errorf("the Service's selector %v does not select the pods %v", dig(svc, "spec", "selector"), podLabels)
	}
	pdb := get("PodDisruptionBudget/shop-anteroom")
	if n, _ := dig(pdb, "spec", "minAvailable").(int); n < 1 || n >= dig(deploy, "spec", "replicas").(int) || !matches(dig(pdb, "spec", "selector", "matchLabels")) {
		t.Errorf("PodDisruptionBudget spec %v: it must keep one pod up and let one go", dig(pdb, "spec"))
	}
	mon := get("ServiceMonitor/shop-anteroom")
	if dig(mon, "spec", "endpoints", 0, "port") != "ops" || dig(mon, "spec", "endpoints", 0, "path") != "/metrics" {
		t.Errorf("ServiceMonitor endpoints %v, want /metrics on the ops port", dig(mon, "spec", "endpoints"))
	}
	opsSvc := get("Service/shop-anteroom-ops")
	sel, _ := dig(mon, "spec", "selector", "matchLabels").(map[string]any)
	for k, v := range sel {
		if dig(opsSvc, "metadata", "labels", k) != v {
			t.Errorf("the ServiceMonitor selects %s=%v, which the ops Service does not carry", k, v)
		}
	}
	if dig(opsSvc, "spec", "ports", 0, "targetPort") != "ops" || !matches(dig(opsSvc, "spec", "selector")) {
		t.Errorf("ops Service spec %v", dig(opsSvc, "spec"))
	}
	// A Secret the operator manages replaces the chart's, and a Redis
	// Cluster is configured in config.redis instead of redis.url.
	own, err := helm(bin, "template", "shop", chartDir, "--set", "existingSecret=shop-keys",
		"--set", "redis.url=", "--set-json", `config.redis={"addrs":["redis-0:6379","redis-1:6379","redis-2:6379"]}`)
	if err != nil {
		t.Fatalf("helm template with existingSecret and config.redis: %v\n%s", err, own)
	}
	ownObjs := manifests(t, own)
	if _, ok := ownObjs["Secret/shop-anteroom"]; ok {
		t.Error("existingSecret set, and the chart still renders its own Secret")
	}
	if got := dig(ownObjs["Deployment/shop-anteroom"], "spec", "template", "spec", "containers", 0, "envFrom", 0, "secretRef", "name"); got != "shop-keys" {
		t.Errorf("with existingSecret, the pods read the Secret %v", got)
	}
	clusterFile, _ := dig(ownObjs["ConfigMap/shop-anteroom"], "data", "anteroom.yaml").(string)
	clusterCfg, err := config.Parse([]byte(clusterFile), func(k string) (string, bool) { v, ok := secretEnv[k]; return v, ok })
	if err != nil {
		t.Errorf("config.redis for a Cluster: %v\n%s", err, clusterFile)
	} else if len(clusterCfg.Redis.Addrs) != 3 || clusterCfg.Redis.URL != "" {
		t.Errorf("config.redis for a Cluster: redis %+v\n%s", clusterCfg.Redis, clusterFile)
	}

	// Without the ServiceMonitor, neither it nor its Service is rendered.
	plain, err := helm(bin, append([]string{"template", "shop", chartDir}, set...)...)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plain, "kind: ServiceMonitor") || strings.Contains(plain, "shop-anteroom-ops") {
		t.Error("serviceMonitor.enabled=false still renders the ServiceMonitor")
	}
}

// Every value in the chart's values.yaml has a comment saying what it is
// for: a key of a map with a comment above it or on its line, an item of
// a list with one above it.
func TestHelmValuesAreDocumented(t *testing.T) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(repoFile(t, "deploy/helm/anteroom/values.yaml")), &doc); err != nil {
		t.Fatal(err)
	}
	var undocumented []string
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := strings.TrimPrefix(path+"."+k.Value, ".")
				if strings.TrimSpace(k.HeadComment+k.LineComment+v.LineComment) == "" {
					undocumented = append(undocumented, p)
				}
				walk(v, p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				// An item's comment is the head comment of the item, or
				// of its first key.
				comment := c.HeadComment + c.LineComment
				if c.Kind == yaml.MappingNode && len(c.Content) > 0 {
					comment += c.Content[0].HeadComment
				}
				if c.Kind == yaml.MappingNode && strings.TrimSpace(comment) == "" {
					undocumented = append(undocumented, fmt.Sprintf("%s[%d]", path, i))
				}
				// The keys inside a list item are the item's own (a
				// room's, a client's): docs/configuration.md
				// documents them.
			}
		}
	}
	walk(&doc, "")
	slices.Sort(undocumented)
	if len(undocumented) > 0 {
		t.Errorf("values.yaml: no comment documents %q", undocumented)
	}
}
