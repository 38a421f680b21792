package qmp

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
)

var versionRE = regexp.MustCompile(`version (\d+\.\d+(?:\.\d+)?)`)

// Version runs "binary --version" and returns QEMU's version, e.g. "7.2.22".
// An empty binary means DefaultBinary.
func Version(ctx context.Context, binary string) (string, error) {
	if binary == "" {
		binary = DefaultBinary
	}
	out, err := exec.CommandContext(ctx, binary, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("%s --version: %w", binary, err)
	}
	m := versionRE.FindSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("%s --version: no version in %q", binary, out)
	}
	return string(m[1]), nil
}
