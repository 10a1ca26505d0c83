package image

import (
	"bufio"
	"context"
	"crypto/sha256"
	"debug/buildinfo"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
	clientset "github.com/samplecrd/samplecrd-controller/pkg/generated/clientset/versioned"
	"github.com/samplecrd/samplecrd-controller/test/integration/framework"
)

const (
	// timeout bounds every wait with no tighter bound of its own.
	timeout = 2 * time.Minute
	// buildTimeout bounds make build-static and make image: a static build compiles every
	// package again (cgo off), several minutes on two busy cores with an empty cache.
	buildTimeout = 30 * time.Minute
	// runtimeUser is the user of the Dockerfile and of the Deployment's securityContext.
	runtimeUser = "65532"
	// kubeconfigInContainer is where the test mounts the kubeconfig.
	kubeconfigInContainer = "/etc/samplecrd/kubeconfig"
	// clusterName is the manager's --cluster-name, on every OVN row it writes.
	clusterName = "image-test"
)

// require skips the test, or fails it under CI=true, unless everything in need is there.
func require(t *testing.T, need ...string) {
	t.Helper()
	var missing []string
	for _, name := range need {
		switch name {
		case "podman":
			if _, err := exec.LookPath("podman"); err != nil {
				missing = append(missing, "podman is not installed (run hack/ensure-podman.sh, or make tools)")
			}
			if _, err := os.Stat("/usr/sbin/runc"); err != nil {
				missing = append(missing, "runc is not in /usr/sbin (run hack/ensure-podman.sh, or make tools)")
			}
			// Rootless podman needs subordinate id ranges and user namespaces that these hosts
			// do not set up; the containers run as root's.
			if os.Geteuid() != 0 {
				missing = append(missing, "podman runs the image only as root here, and the test runs as uid "+fmt.Sprint(os.Geteuid()))
			}
		default:
			if _, err := exec.LookPath(name); err != nil {
				missing = append(missing, name+" is not in PATH")
			}
		}
	}
	if len(missing) == 0 {
		return
	}
	if framework.InCI() {
		t.Fatalf("CI=true and a prerequisite is missing: %s", strings.Join(missing, "; "))
	}
	t.Skipf("skipping: %s", strings.Join(missing, "; "))
}

// runMake runs make with args in the repository and returns its combined output.
func runMake(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", append([]string{"--no-print-directory", "-C", framework.RepoRoot()}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// git returns the output of git with args in the repository, as the Makefile runs it.
func git(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = framework.RepoRoot()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git %s: %v", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out))
}

// TestStaticBuildReproducible builds the manager twice with make build-static, the image's
// build, into two directories, and checks that the binaries are byte-identical, static, built
// with -trimpath and without cgo, and stamped with the commit's version.
func TestStaticBuildReproducible(t *testing.T) {
	require(t, "make", "go", "git")
	var sums [2]string
	var bins [2]string
	for i := range bins {
		bins[i] = filepath.Join(t.TempDir(), "samplecrd-controller")
		runMake(t, "build-static", "STATIC_OUT="+bins[i])
		sums[i] = sha256File(t, bins[i])
	}
	t.Logf("sha256 %s %s", sums[0], bins[0])
	t.Logf("sha256 %s %s", sums[1], bins[1])
	if sums[0] != sums[1] {
		t.Errorf("two builds of one commit differ: sha256 %s and %s", sums[0], sums[1])
	}

	bi, err := buildinfo.ReadFile(bins[0])
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	for key, want := range map[string]string{"CGO_ENABLED": "0", "-trimpath": "true"} {
		if settings[key] != want {
			t.Errorf("build setting %s = %q, want %q", key, settings[key], want)
		}
	}
	f, err := elf.Open(bins[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("the binary names a dynamic loader: it is not static")
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Errorf("the binary needs shared libraries %v (%v): it is not static", libs, err)
	}

	out, err := exec.Command(bins[0], "--version").Output()
	if err != nil {
		t.Fatalf("%s --version: %v", bins[0], err)
	}
	want := fmt.Sprintf("samplecrd-controller %s (commit %s, %s linux/amd64)\n",
		git(t, "describe", "--tags", "--always", "--dirty"), git(t, "rev-parse", "HEAD"), bi.GoVersion)
	if string(out) != want {
		t.Errorf("--version printed %q, want %q", out, want)
	}
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// The image the tests build once, tagged for this test binary; TestMain removes the tag.
var built struct {
	once  sync.Once
	image string
	err   error
}

// buildImage builds the image with make image under a tag of this test binary, once, and
// returns the tag.
func buildImage(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		tag := fmt.Sprintf("localhost/samplecrd-controller:test-%d", os.Getpid())
		ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
		defer cancel()
		out, err := exec.CommandContext(ctx, "make", "--no-print-directory", "-C", framework.RepoRoot(), "image", "IMG="+tag).CombinedOutput()
		if err != nil {
			built.err = fmt.Errorf("make image IMG=%s: %w\n%s", tag, err, out)
			return
		}
		built.image = tag
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.image
}

// removeTestImage removes the tag buildImage made; the layers stay for the next build.
func removeTestImage() {
	if built.image == "" {
		return
	}
	if out, err := exec.Command("podman", "rmi", built.image).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "removing the image %s: %v: %s\n", built.image, err, out)
	}
}

// podman runs podman with args and returns its standard output, failing the test on an error.
func podman(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("podman", args...).Output()
	if err != nil {
		stderr := ""
		if exit, ok := err.(*exec.ExitError); ok {
			stderr = string(exit.Stderr)
		}
		t.Fatalf("podman %s: %v: %s", strings.Join(args, " "), err, stderr)
	}
	return strings.TrimSpace(string(out))
}

// TestImageRunsAsDeployed builds the image with make image, checks its labels, and runs it as
// the Deployment does (user 65532, read-only root, no capabilities, no privilege escalation),
// with leader election in a namespace of its own, against the test's API server and an
// ovsdb-server over TCP: a Network becomes Ready with its rows in OVN, /readyz answers, and
// podman stop ends the manager gracefully (exit 0, lease released).
func TestImageRunsAsDeployed(t *testing.T) {
	require(t, "podman", "make", "go", "git")
	cfg := env.Config(t)
	img := buildImage(t)

	wantVersion, wantCommit := git(t, "describe", "--tags", "--always", "--dirty"), git(t, "rev-parse", "HEAD")
	t.Logf("image %s: %s bytes", img, podman(t, "image", "inspect", "--format", "{{.Size}}", img))
	labels := podman(t, "image", "inspect", "--format",
		`{{index .Labels "org.opencontainers.image.version"}} {{index .Labels "org.opencontainers.image.revision"}} {{.Config.User}} {{join .Config.Entrypoint " "}}`, img)
	if want := fmt.Sprintf("%s %s %s:%s /samplecrd-controller", wantVersion, wantCommit, runtimeUser, runtimeUser); labels != want {
		t.Errorf("image version, revision, user and entrypoint = %q, want %q", labels, want)
	}

	kube := clientset.NewForConfigOrDie(cfg)
	admin := env.KubeClient(t)
	ns := framework.CreateNamespace(t, admin)
	db := framework.StartOVSDBWithTCP(t)
	kubeconfig := readableKubeconfig(t)

	name := fmt.Sprintf("samplecrd-image-test-%d-%s", os.Getpid(), strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")))
	// Registered before the container starts, so that it runs after StartProcess's cleanup
	// has killed the podman client, which leaves the container running.
	t.Cleanup(func() {
		if out, err := exec.Command("podman", "rm", "--force", "--time", "0", name).CombinedOutput(); err != nil {
			t.Errorf("removing container %s: %v: %s", name, err, out)
		}
		if out, err := exec.Command("podman", "ps", "--all", "--quiet", "--filter", "name=^"+name+"$").Output(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Errorf("container %s is still there after podman rm: %q, %v", name, out, err)
		}
	})
	m := framework.StartProcess(t, "container", filepath.Join(framework.RepoRoot(), "hack", "podman-run.sh"),
		"--name", name, "--label", fmt.Sprintf("%s=%d", pidLabel, os.Getpid()),
		"--volume", kubeconfig+":"+kubeconfigInContainer+":ro",
		img,
		"--kubeconfig="+kubeconfigInContainer,
		"--ovn-nb="+db.TCPEndpoint(t),
		"--cluster-name="+clusterName,
		"--leader-elect=true", "--leader-elect-resource-namespace="+ns,
		"--metrics-bind-address=127.0.0.1:0", "--health-probe-bind-address=127.0.0.1:0",
		"--podwatch-namespace="+ns,
		"--logging-format=json",
	)

	// The process is the container's: the Deployment's user and restrictions hold.
	pid := containerPID(t, name, m)
	status := procStatus(t, pid)
	for key, want := range map[string]string{
		"Uid":        strings.Repeat(runtimeUser+"\t", 3) + runtimeUser,
		"Gid":        strings.Repeat(runtimeUser+"\t", 3) + runtimeUser,
		"CapEff":     "0000000000000000",
		"CapBnd":     "0000000000000000",
		"NoNewPrivs": "1",
	} {
		if status[key] != want {
			t.Errorf("/proc/%d/status %s = %q, want %q", pid, key, status[key], want)
		}
	}
	if ro := podman(t, "inspect", "--format", "{{.HostConfig.ReadonlyRootfs}}", name); ro != "true" {
		t.Errorf("the container's root file system is not read-only: ReadonlyRootfs = %s", ro)
	}

	starting := waitLogEntry(t, m, "Starting samplecrd-controller")
	if starting["version"] != wantVersion || starting["commit"] != wantCommit {
		t.Errorf("the manager logged version %v, commit %v; want %s, %s", starting["version"], starting["commit"], wantVersion, wantCommit)
	}
	probes := m.ServingAddress(t, "health probes", timeout)
	waitLogEntry(t, m, "Started leading")

	ctx := context.Background()
	created, err := kube.SamplecrdV1().Networks(ns).Create(ctx, &samplecrdv1.Network{
		ObjectMeta: metav1.ObjectMeta{Name: "image"},
		Spec:       samplecrdv1.NetworkSpec{Cidr: "10.80.0.0/16", Gateway: "10.80.0.1"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var ready *samplecrdv1.Network
	waitUntil(t, m, "the Network to be Ready", func() bool {
		n, err := kube.SamplecrdV1().Networks(ns).Get(ctx, created.Name, metav1.GetOptions{})
		if err != nil || !meta.IsStatusConditionTrue(n.Status.Conditions, samplecrdv1.ConditionReady) {
			return false
		}
		ready = n
		return true
	})
	if p := framework.CheckProgrammed(db.Dump(t), clusterName, ready); !p.OK() {
		t.Errorf("the Network is Ready but its OVN rows are wrong: %s", p)
	}
	waitUntil(t, m, "/readyz to answer 200", func() bool {
		resp, err := http.Get("http://" + probes + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	// The kubelet's stop: SIGTERM, then SIGKILL after the grace period (the Deployment's 40 s).
	podman(t, "stop", "--time", "40", name)
	if code := m.Wait(t, timeout); code != 0 {
		t.Errorf("the container exited %d after podman stop, want 0", code)
	}
	if len(m.LogEntries("Released the leader lease")) == 0 {
		t.Errorf("the manager did not release its lease on SIGTERM")
	}
}

// TestImageReproducible builds the image twice with make image (which caches no layers) and checks that both have the same ID (the digest of the image's configuration, which names every
// layer's digest): no build time is recorded anywhere, the creation time is the commit's.
func TestImageReproducible(t *testing.T) {
	require(t, "podman", "make", "go", "git")
	var ids [2]string
	for i := range ids {
		tag := fmt.Sprintf("localhost/samplecrd-controller:test-%d-repro-%d", os.Getpid(), i)
		runMake(t, "image", "IMG="+tag)
		t.Cleanup(func() {
			if out, err := exec.Command("podman", "rmi", tag).CombinedOutput(); err != nil {
				t.Errorf("removing the image %s: %v: %s", tag, err, out)
			}
		})
		ids[i] = podman(t, "image", "inspect", "--format", "{{.Id}}", tag)
	}
	if ids[0] != ids[1] {
		t.Errorf("two builds of the image differ: %s and %s", ids[0], ids[1])
	}
	created := podman(t, "image", "inspect", "--format", "{{.Created.Unix}}", ids[0])
	if want := git(t, "log", "-1", "--format=%ct"); created != want {
		t.Errorf("the image was created at %s, want the commit's time %s", created, want)
	}
}

// readableKubeconfig writes an administrator's kubeconfig of the test control plane that the
// container's user can read: mode 0644 in a directory of the test.
func readableKubeconfig(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(env.Kubeconfig(t))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	// WriteFile's mode passes through the umask.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// containerPID waits until the container runs and returns its process's id on the host.
func containerPID(t *testing.T, name string, m *framework.Process) int {
	t.Helper()
	var pid int
	waitUntil(t, m, "the container to run", func() bool {
		out, err := exec.Command("podman", "inspect", "--format", "{{.State.Pid}}", name).Output()
		if err != nil {
			return false
		}
		_, err = fmt.Sscan(string(out), &pid)
		return err == nil && pid > 0
	})
	return pid
}

// procStatus reads /proc/PID/status into its fields, with their values' surrounding space trimmed.
func procStatus(t *testing.T, pid int) map[string]string {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fields := map[string]string{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		if key, value, ok := strings.Cut(s.Text(), ":"); ok {
			fields[key] = strings.TrimSpace(value)
		}
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return fields
}

// waitLogEntry waits until the manager logs msg and returns the first such entry.
func waitLogEntry(t *testing.T, m *framework.Process, msg string) map[string]any {
	t.Helper()
	var entry map[string]any
	waitUntil(t, m, "the log line "+msg, func() bool {
		if e := m.LogEntries(msg); len(e) > 0 {
			entry = e[0]
			return true
		}
		return false
	})
	return entry
}

// waitUntil polls cond until it holds, failing the test on the timeout or when the container's
// podman process has exited.
func waitUntil(t *testing.T, m *framework.Process, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, timeout, true,
		func(context.Context) (bool, error) {
			if cond() {
				return true, nil
			}
			if m.Exited() {
				return false, fmt.Errorf("the container exited (%d)", m.ExitCode())
			}
			return false, nil
		})
	if err != nil {
		t.Fatalf("waiting for %s: %v; log:\n%s", what, err, m.Stderr())
	}
}
