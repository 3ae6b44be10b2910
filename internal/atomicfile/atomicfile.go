// Package atomicfile writes files so that a reader, or a later run after a
// crash, sees either the old content or the complete new one, never a part.
package atomicfile

import (
	"io"
	"os"
	"path/filepath"
)

// Write creates a temporary file beside path, lets write fill it, and
// renames it over path (mode 0644) once it is complete and closed. On any error the
// temporary file is removed and path is left as it was.
func Write(path string, write func(w io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	// CreateTemp makes the file private; give it the permissions an
	// ordinary create would.
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
