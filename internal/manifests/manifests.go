// Package manifests renders the kustomizations under config/ as `make manifests` writes them, with
// kustomize's own engine (sigs.k8s.io/kustomize/api/krusty, the version kustomize v5.8.1 is built
// on) and without touching the checked-in files: config/ is copied into an in-memory file system
// and built through a generated overlay whose images transformer sets the manager's image.
package manifests

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/pkg/util"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// ImageName is the manager's image as config/manager/manager.yaml names it; Render replaces it.
const ImageName = "samplecrd-controller"

// Install is the kustomization a cluster installs, and Monitoring those of the Prometheus Operator
// objects and the Grafana dashboard, as directories under the repository root.
var (
	Install    = []string{"config/default"}
	Monitoring = []string{"config/prometheus", "config/grafana"}
)

// Render builds the kustomizations dirs (relative to the repository root, e.g. "config/default")
// and returns their objects as one YAML stream, in order. A non-empty image replaces ImageName in
// every container, as `kustomize edit set image samplecrd-controller=IMAGE` would.
func Render(root, image string, dirs ...string) ([]byte, error) {
	if len(dirs) == 0 {
		return nil, errors.New("no kustomization to render")
	}
	overlay := types.Kustomization{}
	if image != "" {
		img, err := parseImage(image)
		if err != nil {
			return nil, err
		}
		overlay.Images = []types.Image{img}
	}
	mem := filesys.MakeFsInMemory()
	if err := copyTree(mem, filepath.Join(root, "config"), "/config"); err != nil {
		return nil, err
	}
	for _, dir := range dirs {
		clean := path.Clean(filepath.ToSlash(dir))
		if clean != "config" && !strings.HasPrefix(clean, "config/") {
			return nil, fmt.Errorf("%s: only kustomizations under config/ can be rendered", dir)
		}
		overlay.Resources = append(overlay.Resources, "../"+clean)
	}
	raw, err := yaml.Marshal(overlay)
	if err != nil {
		return nil, err
	}
	// The overlay is a sibling of config/, so every resource path stays inside the copy.
	if err := mem.WriteFile("/overlay/kustomization.yaml", raw); err != nil {
		return nil, err
	}
	opts := krusty.MakeDefaultOptions()
	// kustomize build's order: Namespaces, CRDs, then RBAC, and the workloads last, so that
	// `kubectl apply -f` creates each object after what it needs. krusty's default keeps the
	// input order, which puts the ServiceAccount before its Namespace.
	opts.Reorder = krusty.ReorderOptionLegacy
	res, err := krusty.MakeKustomizer(opts).Run(mem, "/overlay")
	if err != nil {
		return nil, fmt.Errorf("rendering %s: %w", strings.Join(dirs, ", "), err)
	}
	out, err := res.AsYaml()
	if err != nil {
		return nil, err
	}
	return out, nil
}

// parseImage splits an image reference into kustomize's images transformer: name, then a tag or a
// digest. It refuses what no container runtime would pull.
func parseImage(image string) (types.Image, error) {
	if strings.ContainsAny(image, " \t\r\n") {
		return types.Image{}, fmt.Errorf("image %q: an image reference has no white space", image)
	}
	name, tag, digest := util.SplitImageName(image)
	if name == "" || strings.HasSuffix(name, "/") || strings.HasPrefix(name, "/") {
		return types.Image{}, fmt.Errorf("image %q: want NAME, NAME:TAG or NAME@DIGEST, such as registry.example.com/samplecrd-controller:v0.1.0", image)
	}
	if name != strings.ToLower(name) {
		// Registries refuse upper-case repository names; a host name is case-insensitive but is
		// written in lower case too.
		return types.Image{}, fmt.Errorf("image %q: the repository name must be lower case", image)
	}
	img := types.Image{Name: ImageName, NewName: name, NewTag: tag, Digest: digest}
	if digest != "" {
		img.NewTag = ""
	}
	return img, nil
}

// copyTree copies the regular files under dir on disk to dst in mem.
func copyTree(mem filesys.FileSystem, dir, dst string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return mem.WriteFile(path.Join(dst, filepath.ToSlash(rel)), data)
	})
}

// Join concatenates YAML streams into one.
func Join(streams ...[]byte) []byte {
	var out bytes.Buffer
	for i, s := range streams {
		if i > 0 {
			out.WriteString("---\n")
		}
		out.Write(s)
	}
	return out.Bytes()
}
