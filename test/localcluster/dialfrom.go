package localcluster

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// DialFrom returns a dialer whose connections start inside the network
// namespace of the process pid (a pod's container, ContainerPID): the
// connection is pod traffic, which a policy engine polices, where the
// test process's own would be the node's. The socket is made on a thread
// switched into that namespace and keeps it after the thread switches
// back; a thread that cannot switch back is never reused (it stays locked
// and ends with its goroutine).
func DialFrom(pid int) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		type result struct {
			c   net.Conn
			err error
		}
		ch := make(chan result, 1)
		go func() {
			runtime.LockOSThread()
			c, restored, err := dialIn(ctx, pid, network, addr)
			if restored {
				runtime.UnlockOSThread()
			}
			ch <- result{c, err}
		}()
		r := <-ch
		return r.c, r.err
	}
}

// dialIn runs on a locked thread.
func dialIn(ctx context.Context, pid int, network, addr string) (c net.Conn, restored bool, err error) {
	home, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return nil, true, err
	}
	defer home.Close()
	target, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		return nil, true, err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		return nil, true, fmt.Errorf("enter the network namespace of pid %d: %w", pid, err)
	}
	c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
	return c, unix.Setns(int(home.Fd()), unix.CLONE_NEWNET) == nil, err
}
