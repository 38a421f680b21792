package sandbox

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// rootImage turns a rootfs= value into an image file: an image is used as
// it is, a directory becomes an ext4 image (mkfs.ext4 -d), cached by the
// directory's content so that the next container of it starts at once.
func (m *Manager) rootImage(ctx context.Context, path string) (string, error) {
	if !filepath.IsAbs(path) {
		return "", fmt.Errorf("%w: rootfs=%s: want an absolute path", ErrInvalid, path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("%w: rootfs=%s: %v", ErrInvalid, path, err)
	}
	if fi.Mode().IsRegular() {
		return path, nil
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("%w: rootfs=%s: neither an image file nor a directory", ErrInvalid, path)
	}
	key, size, err := dirKey(path)
	if err != nil {
		return "", fmt.Errorf("%w: rootfs=%s: %v", ErrInvalid, path, err)
	}
	dir := filepath.Join(m.opts.StateDir, "images")
	img := filepath.Join(dir, key+".ext4")
	if _, err := os.Stat(img); err == nil {
		return img, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	// Room for the files, ext4's own needs and some slack.
	mib := size/(1<<20)*5/4 + 16
	m.log.WithField("rootfs", path).Infof("building a %d MiB ext4 image of the directory", mib)
	tmp := img + ".tmp"
	out, err := exec.CommandContext(ctx, "mkfs.ext4", "-q", "-F", "-d", path, tmp, strconv.FormatInt(mib, 10)+"M").CombinedOutput()
	if err != nil {
		os.Remove(tmp)
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", fmt.Errorf("mkfs.ext4 -d %s: %v: %s", path, err, out)
	}
	if err := os.Rename(tmp, img); err != nil {
		return "", err
	}
	m.log.WithField("rootfs", path).Info("image ready: " + img)
	return img, nil
}

// dirKey hashes a tree's names, modes, sizes and times: content changes
// make a new image; an untouched tree reuses the cached one.
func dirKey(root string) (string, int64, error) {
	h := sha256.New()
	var total int64
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fmt.Fprintf(h, "%s\x00%v\x00%d\x00%d\n", rel, fi.Mode(), fi.Size(), fi.ModTime().UnixNano())
		total += fi.Size()
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))[:24], total, err
}

// loadBundle reads an OCI bundle: its config.json and its root directory.
func loadBundle(dir string) (*specs.Spec, string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, "", fmt.Errorf("%w: bundle=%s: %v", ErrInvalid, dir, err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(b, &spec); err != nil {
		return nil, "", fmt.Errorf("%w: bundle=%s: config.json: %v", ErrInvalid, dir, err)
	}
	if spec.Process == nil || len(spec.Process.Args) == 0 {
		return nil, "", fmt.Errorf("%w: bundle=%s: config.json has no process args", ErrInvalid, dir)
	}
	root := "rootfs"
	if spec.Root != nil && spec.Root.Path != "" {
		root = spec.Root.Path
	}
	if !filepath.IsAbs(root) {
		root = filepath.Join(dir, root)
	}
	return &spec, root, nil
}

// rootDeviceID names the disk that carries a container's root. A disk's
// ID is its virtio serial too, which holds 20 characters, and must start
// with a letter: longer or odd container IDs get a hash instead.
func rootDeviceID(cid string) string {
	id := "root-" + cid
	if len(id) > 20 {
		h := sha256.Sum256([]byte(cid))
		id = "root-" + hex.EncodeToString(h[:6])
	}
	return id
}
