package credentials

import (
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// BecomeSubreaper makes the process the reaper of its orphaned descendants
// (prctl PR_SET_CHILD_SUBREAPER), as PID 1 is in a container anyway: a
// credential script's children that outlive it are reparented here rather
// than to an init that is not there, and killGroup reaps them.
func BecomeSubreaper() error {
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}

// killGroup kills what is left of a script's process group and reaps those
// of its members that were reparented to this process. It waits only for
// members of that group (wait4 with -pgid), never for other children, whose
// owners (os/exec) wait for them.
func killGroup(pgid int) {
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	// Killed processes die at once unless stuck in the kernel: poll
	// without blocking, for a bounded time.
	deadline := time.Now().Add(2 * time.Second)
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-pgid, &ws, syscall.WNOHANG, nil)
		switch {
		case err == syscall.EINTR || pid > 0:
			continue
		case err != nil:
			return // ECHILD: none left that are ours
		case time.Now().After(deadline):
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
