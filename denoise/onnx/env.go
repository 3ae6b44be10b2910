package onnx

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

const (
	// LibEnv is the environment variable naming the ONNX Runtime shared
	// library (libonnxruntime.so) to load.
	LibEnv = "ONNXRUNTIME_LIB"
	// CacheEnv overrides the cache root used by scripts/install-onnxruntime.sh
	// (default $HOME/.cache/eigenscore).
	CacheEnv = "EIGENSCORE_CACHE"
	// ORTVersion is the ONNX Runtime release that scripts/install-onnxruntime.sh
	// installs into the cache.
	ORTVersion = "1.30.0"
	// MinORTVersion is the oldest ONNX Runtime release whose C API
	// onnxruntime_go v1.27 can use (it asks for ORT_API_VERSION 24).
	MinORTVersion = "1.24"
)

// DefaultLibraryPath is where scripts/install-onnxruntime.sh puts the library:
// ${EIGENSCORE_CACHE:-$HOME/.cache/eigenscore}/onnxruntime-1.30.0/libonnxruntime.so.1.
func DefaultLibraryPath() string {
	root := os.Getenv(CacheEnv)
	if root == "" {
		home, err := os.UserHomeDir()
		if err != nil || home == "" {
			home = "."
		}
		root = filepath.Join(home, ".cache", "eigenscore")
	}
	return filepath.Join(root, "onnxruntime-"+ORTVersion, "libonnxruntime.so.1")
}

// ErrLibraryNotFound is wrapped by the error LibraryPath returns when the
// chosen library file does not exist.
var ErrLibraryNotFound = errors.New("ONNX Runtime shared library not found")

// installHint says how to get the library; it ends every not-found error.
const installHint = `to install it, run
    scripts/install-onnxruntime.sh
(it fetches onnxruntime-node@` + ORTVersion + ` with npm, verifies its SHA-256 and caches libonnxruntime.so.1 at the default path), or set ` + LibEnv + ` to an existing libonnxruntime.so from an ONNX Runtime release archive, the onnxruntime pip wheel (onnxruntime/capi/libonnxruntime.so.*) or a system package; it must be ONNX Runtime >= ` + MinORTVersion + ` (the C API version onnxruntime_go v1.27 uses)`

// LibraryPath chooses the ONNX Runtime library: flag when it is not empty,
// else $ONNXRUNTIME_LIB when set, else DefaultLibraryPath. It returns an
// error wrapping ErrLibraryNotFound, with installation instructions, when the
// chosen file does not exist.
func LibraryPath(flag string) (string, error) {
	path, source := flag, "the library flag/option"
	if path == "" {
		if env := os.Getenv(LibEnv); env != "" {
			path, source = env, "$"+LibEnv
		} else {
			path, source = DefaultLibraryPath(), "the default cache path"
		}
	}
	st, err := os.Stat(path)
	switch {
	case err != nil:
		return "", fmt.Errorf("onnx: %w at %s (from %s): %v\n%s", ErrLibraryNotFound, path, source, err, installHint)
	case st.IsDir():
		return "", fmt.Errorf("onnx: %w: %s (from %s) is a directory, not libonnxruntime.so\n%s", ErrLibraryNotFound, path, source, installHint)
	}
	return path, nil
}

// The ONNX Runtime environment is process-global in onnxruntime_go: one
// shared library, loaded once, for the whole process.
var env struct {
	mu   sync.Mutex
	path string // the library the environment was initialised with
	key  string // path with symlinks resolved, for comparisons
}

// Init loads the ONNX Runtime library chosen by LibraryPath(libFlag) and
// initialises the process-wide environment. It is called by Open and
// OpenBytes; calling it again with the same library is a no-op, and calling
// it with a different library than the one already loaded is an error (the
// library cannot be swapped within a process). A failed initialisation can be
// retried.
func Init(libFlag string) (string, error) {
	path, err := LibraryPath(libFlag)
	if err != nil {
		return "", err
	}
	// dlopen searches the system library paths for a name without a slash,
	// so always load by absolute path.
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("onnx: library path %s: %w", path, err)
	}
	key := abs
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		key = real
	}

	env.mu.Lock()
	defer env.mu.Unlock()
	if env.path != "" {
		if env.key != key {
			return "", fmt.Errorf("onnx: the ONNX Runtime environment is already initialised with %s; cannot switch to %s in the same process (the library is process-global: use one library path for every model)", env.path, path)
		}
		return env.path, nil
	}
	if ort.IsInitialized() {
		// Someone else in this process initialised onnxruntime_go directly;
		// its library is the one in use and we cannot tell its path.
		return "", fmt.Errorf("onnx: the ONNX Runtime environment was initialised outside package onnx; cannot check that it uses %s", path)
	}
	ort.SetSharedLibraryPath(abs)
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		return "", fmt.Errorf("onnx: initialising ONNX Runtime from %s: %w\nthe library must be libonnxruntime.so for this platform, ONNX Runtime >= %s; %s", path, err, MinORTVersion, installHint)
	}
	env.path, env.key = path, key
	return path, nil
}

// RuntimeVersion reports the version of the loaded ONNX Runtime library, or
// "" before Init has succeeded.
func RuntimeVersion() string {
	env.mu.Lock()
	defer env.mu.Unlock()
	if !ort.IsInitialized() {
		return ""
	}
	return ort.GetVersion()
}
