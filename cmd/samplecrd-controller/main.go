// Command samplecrd-controller runs the samplecrd controllers against a Kubernetes API server.
package main

import (
	"os"

	"github.com/samplecrd/samplecrd-controller/cmd/samplecrd-controller/app"
)

func main() {
	os.Exit(app.Main(os.Args[1:]))
}
