// Command manifests renders kustomizations of config/ into one YAML file (or standard output) for
// `kubectl apply -f`, with the manager's image set: what `make manifests` runs. The checked-in
// files are not changed.
//
//	go run ./hack/manifests --image registry.example.com/samplecrd-controller:v0.1.0 --output dist/install.yaml config/default
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/samplecrd/samplecrd-controller/internal/manifests"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "manifests:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("manifests", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: manifests [--image IMAGE] [--output FILE] [--root DIR] KUSTOMIZATION_DIR...")
		fs.PrintDefaults()
	}
	image := fs.String("image", "", "image of the manager, replacing "+manifests.ImageName+" (NAME, NAME:TAG or NAME@DIGEST); empty keeps the checked-in one")
	output := fs.String("output", "", "file to write, its directory created when missing; standard output when empty")
	root := fs.String("root", ".", "root of the repository")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return fmt.Errorf("name at least one kustomization directory, such as %s", manifests.Install[0])
	}
	out, err := manifests.Render(*root, *image, fs.Args()...)
	if err != nil {
		return err
	}
	if *output == "" {
		_, err := os.Stdout.Write(out)
		return err
	}
	if err := os.MkdirAll(filepath.Dir(*output), 0o755); err != nil {
		return err
	}
	return os.WriteFile(*output, out, 0o644)
}
