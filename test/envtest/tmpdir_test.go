package envtest

import (
	"os"
	"runtime"
	"syscall"
)

// minInMemory is the free space /dev/shm must have for the suite's files:
// etcd preallocates 64 MiB write-ahead log segments, and a container's
// default /dev/shm (64 MiB) would not hold them.
const minInMemory = 2 << 30

// tmpInMemory points TMPDIR (and so os.TempDir, t.TempDir, envtest's etcd
// and API server, and every process the tests start) at a directory in
// /dev/shm when Linux has room there, and returns what puts it back and
// removes the directory. The suite writes and removes tens of thousands of
// small files (registry storage, certificates, etcd's data): on a busy
// machine's disk removing them alone took longer than most tests. Where
// there is no such room it changes nothing.
func tmpInMemory() (restore func()) {
	var st syscall.Statfs_t
	if runtime.GOOS != "linux" || syscall.Statfs("/dev/shm", &st) != nil || uint64(st.Bavail)*uint64(st.Bsize) < minInMemory {
		return func() {}
	}
	dir, err := os.MkdirTemp("/dev/shm", "image-pin-e2e-tmp-")
	if err != nil {
		return func() {}
	}
	old, had := os.LookupEnv("TMPDIR")
	os.Setenv("TMPDIR", dir)
	return func() {
		if had {
			os.Setenv("TMPDIR", old)
		} else {
			os.Unsetenv("TMPDIR")
		}
		os.RemoveAll(dir)
	}
}
