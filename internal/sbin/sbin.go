// Package sbin finds system programs such as ovsdb-server, which Debian installs in /usr/sbin:
// a directory that is not in every user's PATH.
package sbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// dirs are searched, in order, after PATH.
var dirs = []string{"/usr/sbin", "/usr/local/sbin", "/sbin"}

// Find returns the path of the executable name, from PATH or the sbin directories.
func Find(name string) (string, error) {
	if path, err := exec.LookPath(name); err == nil {
		return path, nil
	}
	for _, dir := range dirs {
		path := filepath.Join(dir, name)
		if info, err := os.Stat(path); err == nil && !info.IsDir() && info.Mode()&0o111 != 0 {
			return path, nil
		}
	}
	return "", fmt.Errorf("%s not found in PATH or the sbin directories (run hack/ensure-ovn.sh)", name)
}
