// Package networkapi tests the Network API as the real API server serves it: the CRD, admission
// validation, discovery, and the generated clientset, informers, listers and apply configurations.
package networkapi

import (
	"os"
	"testing"

	"github.com/samplecrd/samplecrd-controller/test/integration/framework"
)

var env = framework.NewEnvironment()

func TestMain(m *testing.M) {
	os.Exit(env.Run(m))
}
