package version

import (
	"regexp"
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestGet(t *testing.T) {
	const full = "0123456789abcdef0123456789abcdef01234567"
	buildInfo := func(settings ...debug.BuildSetting) func() (*debug.BuildInfo, bool) {
		return func() (*debug.BuildInfo, bool) { return &debug.BuildInfo{Settings: settings}, true }
	}
	noBuildInfo := func() (*debug.BuildInfo, bool) { return nil, false }
	platform := runtime.GOOS + "/" + runtime.GOARCH
	tests := []struct {
		name            string
		version, commit string
		readBuildInfo   func() (*debug.BuildInfo, bool)
		wantVersion     string
		wantCommit      string
	}{
		{name: "stamped by make", version: "v0.2.0-3-g0123456", commit: full,
			readBuildInfo: buildInfo(debug.BuildSetting{Key: "vcs.revision", Value: "ffffffffffffffffffffffffffffffffffffffff"}),
			wantVersion:   "v0.2.0-3-g0123456", wantCommit: full},
		{name: "go build in a clean checkout", readBuildInfo: buildInfo(
			debug.BuildSetting{Key: "vcs.revision", Value: full}, debug.BuildSetting{Key: "vcs.modified", Value: "false"}),
			wantVersion: "0123456", wantCommit: full},
		{name: "go build in a modified checkout", readBuildInfo: buildInfo(
			debug.BuildSetting{Key: "vcs.revision", Value: full}, debug.BuildSetting{Key: "vcs.modified", Value: "true"}),
			wantVersion: "0123456-dirty", wantCommit: full},
		{name: "nothing recorded", readBuildInfo: noBuildInfo, wantVersion: "unknown", wantCommit: "unknown"},
		{name: "build info without vcs", readBuildInfo: buildInfo(), wantVersion: "unknown", wantCommit: "unknown"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := get(tc.version, tc.commit, tc.readBuildInfo)
			want := Info{Version: tc.wantVersion, Commit: tc.wantCommit, GoVersion: runtime.Version(), Platform: platform}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("get (-want +got):\n%s", diff)
			}
		})
	}
}

func TestString(t *testing.T) {
	info := Info{Version: "v0.2.0", Commit: "0123456789abcdef0123456789abcdef01234567", GoVersion: "go1.26.8", Platform: "linux/amd64"}
	want := "samplecrd-controller v0.2.0 (commit 0123456789abcdef0123456789abcdef01234567, go1.26.8 linux/amd64)"
	if got := info.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

// TestGetString checks the line of this test binary, which go test builds unstamped: one line,
// with the Go version that built it.
func TestGetString(t *testing.T) {
	line := Get().String()
	re := regexp.MustCompile(`^samplecrd-controller \S+ \(commit \S+, ` + regexp.QuoteMeta(runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH) + `\)$`)
	if !re.MatchString(line) {
		t.Errorf("Get().String() = %q, does not match %s", line, re)
	}
}
