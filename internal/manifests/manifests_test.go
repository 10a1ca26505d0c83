package manifests

import (
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/kustomize/api/types"
)

func TestParseImage(t *testing.T) {
	digest := "sha256:" + strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name    string
		image   string
		want    types.Image
		wantErr string
	}{
		{name: "name only", image: "samplecrd-controller", want: types.Image{Name: ImageName, NewName: "samplecrd-controller"}},
		{name: "tag", image: "registry.example.com/team/samplecrd-controller:v0.1.0",
			want: types.Image{Name: ImageName, NewName: "registry.example.com/team/samplecrd-controller", NewTag: "v0.1.0"}},
		{name: "registry port and tag", image: "localhost:5000/samplecrd-controller:dev",
			want: types.Image{Name: ImageName, NewName: "localhost:5000/samplecrd-controller", NewTag: "dev"}},
		{name: "registry port, no tag", image: "localhost:5000/samplecrd-controller",
			want: types.Image{Name: ImageName, NewName: "localhost:5000/samplecrd-controller"}},
		{name: "digest", image: "registry.example.com/samplecrd-controller@" + digest,
			want: types.Image{Name: ImageName, NewName: "registry.example.com/samplecrd-controller", Digest: digest}},
		{name: "white space", image: "samplecrd controller", wantErr: "no white space"},
		{name: "upper case", image: "Registry.example.com/Samplecrd:v1", wantErr: "lower case"},
		{name: "no name", image: ":v1", wantErr: "want NAME"},
		{name: "trailing slash", image: "registry.example.com/", wantErr: "want NAME"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseImage(tc.image)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parseImage(%q) = %v, %v; want an error saying %q", tc.image, got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("parseImage(%q) (-want +got):\n%s", tc.image, diff)
			}
		})
	}
}

// TestRenderSetsImage renders config/default as make manifests does: the one container runs the
// image asked for, and the checked-in name is gone.
func TestRenderSetsImage(t *testing.T) {
	out, err := Render(repoRoot(t), "registry.example.com/samplecrd-controller:v9.8.7", Install...)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(string(out), "image: registry.example.com/samplecrd-controller:v9.8.7\n"); got != 1 {
		t.Errorf("the rendered manifests name the image %d times, want once:\n%s", got, out)
	}
	if strings.Contains(string(out), "image: "+ImageName) {
		t.Errorf("the rendered manifests still name the image %s", ImageName)
	}
	if !strings.HasPrefix(string(out), "apiVersion: v1\nkind: Namespace\n") {
		t.Errorf("the rendered manifests do not start with the Namespace, which kubectl apply -f needs first:\n%.200s", out)
	}
}

func TestRenderRefusesOutsideConfig(t *testing.T) {
	if _, err := Render(repoRoot(t), "", "hack"); err == nil || !strings.Contains(err.Error(), "under config/") {
		t.Errorf("Render(hack) = %v, want an error saying only config/ is rendered", err)
	}
	if _, err := Render(repoRoot(t), ""); err == nil {
		t.Error("Render with no directory succeeded")
	}
}

func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot find the source location")
	}
	return filepath.Join(filepath.Dir(file), "..", "..")
}
