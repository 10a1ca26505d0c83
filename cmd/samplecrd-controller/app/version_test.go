package app

import (
	"bytes"
	"testing"

	"github.com/samplecrd/samplecrd-controller/pkg/version"
)

// TestVersionFlag checks that --version prints the one version line and exits 0, without the
// options the manager needs to run (no --ovn-nb here).
func TestVersionFlag(t *testing.T) {
	var out bytes.Buffer
	if code := runMain([]string{"--version"}, &out); code != 0 {
		t.Fatalf("--version exited %d, want 0", code)
	}
	want := version.Get().String() + "\n"
	if got := out.String(); got != want {
		t.Errorf("--version printed %q, want %q", got, want)
	}
}
