// Package version is the manager's version, commit and Go version. make stamps the version and
// commit at link time (go build -ldflags "-X ..."), from git describe and git rev-parse: the
// build records no date, so that two builds of one commit give the same binary. A binary built
// without make (go build, go test) falls back to the commit the Go toolchain records itself.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set by make with -ldflags "-X github.com/samplecrd/samplecrd-controller/pkg/version.version=...".
// Variables, not constants: -X sets only string variables.
var (
	// version is git describe --tags --always --dirty of the build.
	version = ""
	// commit is git rev-parse HEAD of the build.
	commit = ""
)

// unknown stands for what neither make nor the Go toolchain recorded.
const unknown = "unknown"

// Info is what a binary knows of its build.
type Info struct {
	// Version is git describe --tags --always --dirty of the build, such as v0.2.0, v0.2.0-3-gabc1234
	// or abc1234-dirty; "unknown" when not stamped.
	Version string
	// Commit is the full commit hash; "unknown" when neither stamped nor recorded by Go.
	Commit string
	// GoVersion is the Go toolchain that built the binary, such as go1.26.8.
	GoVersion string
	// Platform is GOOS/GOARCH.
	Platform string
}

// Get returns the build's Info.
func Get() Info {
	return get(version, commit, debug.ReadBuildInfo)
}

// get is Get with the stamped values and the build info reader as arguments, for tests.
func get(version, commit string, readBuildInfo func() (*debug.BuildInfo, bool)) Info {
	info := Info{
		Version:   version,
		Commit:    commit,
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
	}
	if info.Commit == "" {
		// go build records the commit (and whether the tree was modified) of a build in a git
		// checkout, unless -buildvcs=false.
		if bi, ok := readBuildInfo(); ok {
			modified := false
			for _, s := range bi.Settings {
				switch s.Key {
				case "vcs.revision":
					info.Commit = s.Value
				case "vcs.modified":
					modified = s.Value == "true"
				}
			}
			if info.Commit != "" && info.Version == "" {
				info.Version = shortCommit(info.Commit)
				if modified {
					info.Version += "-dirty"
				}
			}
		}
	}
	if info.Version == "" {
		info.Version = unknown
	}
	if info.Commit == "" {
		info.Commit = unknown
	}
	return info
}

// shortCommit abbreviates a commit hash to the seven characters git describe --always uses.
func shortCommit(c string) string {
	if len(c) > 7 {
		return c[:7]
	}
	return c
}

// String is the one line --version prints:
//
//	samplecrd-controller v0.2.0 (commit 0123456789abcdef0123456789abcdef01234567, go1.26.8 linux/amd64)
func (i Info) String() string {
	return fmt.Sprintf("samplecrd-controller %s (commit %s, %s %s)", i.Version, i.Commit, i.GoVersion, i.Platform)
}
